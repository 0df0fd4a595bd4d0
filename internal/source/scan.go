package source

import (
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
)

// members walks the members of the JSON object starting at s[i]=='{' (the
// input is already validated) and returns the index just past its closing
// brace. For each member fn gets the name and the index where the value
// starts; it returns the index just past the value when it consumed the
// value itself (descending into nested objects without a second pass), or
// -1 to have members skip it. Values are never unescaped here, so members
// the caller ignores cost no allocation.
func members(s string, i int, fn func(key string, v int) int) int {
	i = skipWS(s, i)
	if i >= len(s) || s[i] != '{' {
		return skipValue(s, i)
	}
	i++
	for {
		i = skipWS(s, i)
		if i >= len(s) {
			return i
		}
		if s[i] == '}' {
			return i + 1
		}
		if s[i] != '"' {
			return len(s)
		}
		kend := skipString(s, i)
		key := s[i+1 : max(i+1, kend-1)]
		if strings.IndexByte(key, '\\') >= 0 {
			key = gjson.Parse(s[i:kend]).Str
		}
		i = skipWS(s, kend)
		if i >= len(s) || s[i] != ':' {
			return len(s)
		}
		v := skipWS(s, i+1)
		end := fn(key, v)
		if end < 0 {
			end = skipValue(s, v)
		}
		i = skipWS(s, end)
		if i < len(s) && s[i] == ',' {
			i++
		}
	}
}

// eachMember calls fn with the name and raw value text of each member of
// the JSON object obj.
func eachMember(obj string, fn func(key, raw string)) {
	members(obj, 0, func(key string, v int) int {
		end := skipValue(obj, v)
		fn(key, obj[v:end])
		return end
	})
}

// result makes a gjson.Result for the raw value s[v:end], unescaping only
// string values.
func result(s string, v, end int) gjson.Result {
	raw := s[v:end]
	r := gjson.Result{Raw: raw, Index: v}
	if raw == "" {
		return gjson.Result{}
	}
	switch raw[0] {
	case '"':
		r.Type = gjson.String
		r.Str = rawString(raw)
	case '{', '[':
		r.Type = gjson.JSON
	case 't':
		r.Type = gjson.True
	case 'f':
		r.Type = gjson.False
	case 'n':
		r.Type = gjson.Null
	default:
		r.Type = gjson.Number
		r.Num, _ = strconv.ParseFloat(raw, 64)
	}
	return r
}

// rawString returns the value of a raw JSON scalar as text: strings
// unescaped, numbers as written, null as "".
func rawString(raw string) string {
	if len(raw) == 0 {
		return ""
	}
	switch raw[0] {
	case '"':
		if strings.IndexByte(raw, '\\') < 0 {
			return raw[1 : len(raw)-1]
		}
		return unquote(raw)
	case '{', '[', 'n':
		return ""
	}
	return raw // number, true, false
}

func skipWS(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index just past the string starting at s[i]=='"'.
func skipString(s string, i int) int {
	i++
	for {
		j := strings.IndexByte(s[i:], '"')
		if j < 0 {
			return len(s)
		}
		i += j
		// Count the backslashes before the quote.
		k := i - 1
		for k >= 0 && s[k] == '\\' {
			k--
		}
		i++
		if (i-2-k)%2 == 0 {
			return i
		}
	}
}

// skipValue returns the index just past the value starting at s[i].
func skipValue(s string, i int) int {
	if i >= len(s) {
		return i
	}
	switch s[i] {
	case '"':
		return skipString(s, i)
	case '{', '[':
		depth := 0
		for i < len(s) {
			switch s[i] {
			case '"':
				i = skipString(s, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	}
	for i < len(s) && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r' {
		i++
	}
	return i
}
