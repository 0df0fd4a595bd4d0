package source

import (
	"strconv"
	"time"

	"github.com/tidwall/gjson"
)

// now is the clock used to place year-less syslog times; tests replace it.
var now = time.Now

// timeOf reads a JSON timestamp: a number or numeric string is an epoch
// whose unit is inferred from its magnitude, any other string an ISO 8601 /
// RFC 3339 time (or one of a few other common layouts).
func timeOf(r gjson.Result) (time.Time, bool) {
	switch r.Type {
	case gjson.Number:
		return epoch(r.Raw)
	case gjson.String:
		s := r.Str
		if len(s) >= 10 && s[4] == '-' {
			return parseISO(s)
		}
		if len(s) > 0 && (s[0] >= '0' && s[0] <= '9') {
			if t, ok := epoch(s); ok {
				return t, true
			}
			return parseISO(s)
		}
		return parseOther(s)
	}
	return time.Time{}, false
}

// epoch converts a decimal epoch number: below 1e11 it is seconds, below
// 1e14 milliseconds, below 1e17 microseconds, otherwise nanoseconds.
func epoch(s string) (time.Time, bool) {
	intPart, frac := s, ""
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '.' {
			intPart, frac = s[:i], s[i+1:]
			break
		}
		if c < '0' || c > '9' {
			return epochFloat(s)
		}
	}
	if len(intPart) == 0 || len(intPart) > 19 {
		return epochFloat(s)
	}
	n, err := strconv.ParseInt(intPart, 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}, false
	}
	var fracNs int64 // fraction of the unit, in units of 1e-9
	for i, scale := 0, int64(100_000_000); i < len(frac); i++ {
		c := frac[i]
		if c < '0' || c > '9' {
			return time.Time{}, false
		}
		fracNs += int64(c-'0') * scale
		scale /= 10
	}
	switch {
	case n < 1e11:
		return time.Unix(n, fracNs).UTC(), true
	case n < 1e14:
		return time.UnixMilli(n).Add(time.Duration(fracNs / 1e3)).UTC(), true
	case n < 1e17:
		return time.UnixMicro(n).Add(time.Duration(fracNs / 1e6)).UTC(), true
	}
	return time.Unix(0, n).UTC(), true
}

func epochFloat(s string) (time.Time, bool) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || !(f > 0) || f > 9.2e18 {
		return time.Time{}, false
	}
	switch {
	case f < 1e11:
		sec := int64(f)
		return time.Unix(sec, int64((f-float64(sec))*1e9)).UTC(), true
	case f < 1e14:
		return time.Unix(0, int64(f*1e6)).UTC(), true
	case f < 1e17:
		return time.Unix(0, int64(f*1e3)).UTC(), true
	}
	return time.Unix(0, int64(f)).UTC(), true
}

// parseISO reads YYYY-MM-DD[(T|t| )hh:mm[:ss[.fraction]]][Z|±hh[:mm]| UTC].
// A time without a zone is UTC. The result is always in UTC.
func parseISO(s string) (time.Time, bool) {
	if len(s) < 10 || s[4] != '-' || s[7] != '-' {
		return time.Time{}, false
	}
	year, ok1 := digits(s[0:4])
	month, ok2 := digits(s[5:7])
	day, ok3 := digits(s[8:10])
	if !ok1 || !ok2 || !ok3 || month < 1 || month > 12 || day < 1 || day > 31 {
		return time.Time{}, false
	}
	var hour, minute, sec, nsec int
	i := 10
	if i < len(s) && (s[i] == 'T' || s[i] == 't' || s[i] == ' ') {
		if len(s) < i+6 || s[i+3] != ':' {
			return time.Time{}, false
		}
		var ok4, ok5 bool
		hour, ok4 = digits(s[i+1 : i+3])
		minute, ok5 = digits(s[i+4 : i+6])
		if !ok4 || !ok5 || hour > 24 || minute > 59 {
			return time.Time{}, false
		}
		i += 6
		if i < len(s) && s[i] == ':' {
			if len(s) < i+3 {
				return time.Time{}, false
			}
			var ok bool
			if sec, ok = digits(s[i+1 : i+3]); !ok || sec > 60 {
				return time.Time{}, false
			}
			i += 3
			if i < len(s) && (s[i] == '.' || s[i] == ',') {
				i++
				start := i
				for scale := 100_000_000; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
					nsec += int(s[i]-'0') * scale
					scale /= 10
				}
				if i == start {
					return time.Time{}, false
				}
			}
		}
	}
	var offset int // seconds east of UTC
	switch rest := s[i:]; {
	case rest == "" || rest == "Z" || rest == "z" || rest == " UTC" || rest == " Z":
	case (rest[0] == '+' || rest[0] == '-') && (len(rest) == 3 || len(rest) == 5 || len(rest) == 6):
		oh, ok := digits(rest[1:3])
		om := 0
		switch len(rest) {
		case 5:
			om, ok = digits(rest[3:5])
		case 6:
			if rest[3] != ':' {
				return time.Time{}, false
			}
			om, ok = digits(rest[4:6])
		}
		if !ok || oh > 23 || om > 59 {
			return time.Time{}, false
		}
		offset = oh*3600 + om*60
		if rest[0] == '-' {
			offset = -offset
		}
	default:
		return time.Time{}, false
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC)
	if offset != 0 {
		t = t.Add(-time.Duration(offset) * time.Second)
	}
	return t, true
}

// otherLayouts are tried for timestamp strings that are not ISO 8601.
var otherLayouts = []string{
	time.RFC1123Z,
	time.RFC1123,
	"02/Jan/2006:15:04:05 -0700", // common/combined access log
	time.ANSIC,
	time.RubyDate,
}

func parseOther(s string) (time.Time, bool) {
	if t, ok := parseISO(s); ok {
		return t, true
	}
	if t, n, ok := parseStamp(s); ok && n == len(s) {
		return t, true
	}
	for _, layout := range otherLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

var monthNames = [12]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

// parseStamp reads an RFC 3164 timestamp "Mmm dd hh:mm:ss" (day padded with
// a space or a zero, optional fraction) at the start of s and returns the
// time and the number of bytes used. The year is guessed (see package doc).
func parseStamp(s string) (time.Time, int, bool) {
	if len(s) < 15 || s[3] != ' ' || s[6] != ' ' || s[9] != ':' || s[12] != ':' {
		return time.Time{}, 0, false
	}
	month := 0
	for i, m := range monthNames {
		if s[:3] == m {
			month = i + 1
			break
		}
	}
	if month == 0 {
		return time.Time{}, 0, false
	}
	d := s[4:6]
	if d[0] == ' ' {
		d = d[1:]
	}
	day, ok1 := digits(d)
	hour, ok2 := digits(s[7:9])
	minute, ok3 := digits(s[10:12])
	sec, ok4 := digits(s[13:15])
	if !ok1 || !ok2 || !ok3 || !ok4 || day < 1 || day > 31 || hour > 23 || minute > 59 || sec > 60 {
		return time.Time{}, 0, false
	}
	n, nsec := 15, 0
	if n < len(s) && s[n] == '.' {
		n++
		for scale := 100_000_000; n < len(s) && s[n] >= '0' && s[n] <= '9'; n++ {
			nsec += int(s[n]-'0') * scale
			scale /= 10
		}
	}
	cur := now().UTC()
	t := time.Date(cur.Year(), time.Month(month), day, hour, minute, sec, nsec, time.UTC)
	if t.After(cur.Add(24 * time.Hour)) {
		t = time.Date(cur.Year()-1, time.Month(month), day, hour, minute, sec, nsec, time.UTC)
	}
	return t, n, true
}

// digits parses a short run of ASCII digits.
func digits(s string) (int, bool) {
	if len(s) == 0 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}
