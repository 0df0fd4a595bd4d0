package sigma

import "strings"

// A small scanner over the members of one JSON object that keeps every
// value as raw text, so reading an event's data fields costs no
// allocation; strings are unescaped only when a rule reads them.

type objIter struct {
	s string
	i int
}

func newObjIter(s string) objIter {
	i := skipWS(s, 0)
	if i >= len(s) || s[i] != '{' {
		return objIter{s: s, i: len(s)}
	}
	return objIter{s: s, i: i + 1}
}

// next returns the next member's raw key (without quotes, still escaped)
// and raw value; ok is false at the end or on malformed input.
func (it *objIter) next() (key, val string, ok bool) {
	s := it.s
	i := skipWS(s, it.i)
	if i < len(s) && s[i] == ',' {
		i = skipWS(s, i+1)
	}
	if i >= len(s) || s[i] != '"' {
		it.i = len(s)
		return "", "", false
	}
	end := skipString(s, i)
	if end < 0 {
		it.i = len(s)
		return "", "", false
	}
	key = s[i+1 : end-1]
	i = skipWS(s, end)
	if i >= len(s) || s[i] != ':' {
		it.i = len(s)
		return "", "", false
	}
	i = skipWS(s, i+1)
	vend := skipValue(s, i)
	if vend < 0 {
		it.i = len(s)
		return "", "", false
	}
	it.i = vend
	return key, s[i:vend], true
}

func skipWS(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index just past the string starting at s[i]:
// the first quote not escaped by an odd run of backslashes. Short strings
// (most keys and values) are walked byte by byte; the rest of a long one
// is searched with IndexByte.
func skipString(s string, i int) int {
	j := i + 1
	for end := min(len(s), j+16); j < end; j++ {
		switch s[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	for j < len(s) {
		k := strings.IndexByte(s[j:], '"')
		if k < 0 {
			return -1
		}
		j += k
		b := j - 1
		for b > i && s[b] == '\\' {
			b--
		}
		if (j-1-b)%2 == 0 {
			return j + 1
		}
		j++
	}
	return -1
}

// skipValue returns the index just past the value starting at s[i].
func skipValue(s string, i int) int {
	if i >= len(s) {
		return -1
	}
	switch s[i] {
	case '"':
		return skipString(s, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(s); j++ {
			switch s[j] {
			case '"':
				e := skipString(s, j)
				if e < 0 {
					return -1
				}
				j = e - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	}
	j := i
	for j < len(s) && s[j] != ',' && s[j] != '}' && s[j] != ']' && s[j] != ' ' && s[j] != '\n' && s[j] != '\r' && s[j] != '\t' {
		j++
	}
	if j == i {
		return -1
	}
	return j
}

// hasEscape reports whether a raw JSON string body holds a backslash.
func hasEscape(s string) bool {
	if len(s) > 32 {
		return strings.IndexByte(s, '\\') >= 0
	}
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' {
			return true
		}
	}
	return false
}
