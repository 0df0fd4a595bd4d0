package source

import (
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// unquote decodes a JSON string literal (with its quotes) that contains at
// least one escape. It allocates once: the result never outgrows the
// literal. Invalid escapes, which the validator has already refused, decode
// as U+FFFD rather than failing.
func unquote(raw string) string {
	s := raw[1 : len(raw)-1]
	b := AppendUnescaped(make([]byte, 0, len(s)), s)
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// AppendUnescaped appends the decoded body s of a JSON string (without its
// quotes) to b. Invalid escapes decode as U+FFFD rather than failing; a
// lone surrogate becomes U+FFFD.
func AppendUnescaped(b []byte, s string) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			b = append(b, c)
			i++
			continue
		}
		if i+1 >= len(s) {
			break
		}
		switch e := s[i+1]; e {
		case '"', '\\', '/':
			b = append(b, e)
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r, n := hex4(s, i+2)
			i += n
			if utf16.IsSurrogate(r) && i+6 <= len(s) && s[i+2] == '\\' && s[i+3] == 'u' {
				if r2, n2 := hex4(s, i+4); n2 == 4 {
					if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
						r = d
						i += 6
					}
				}
			}
			if utf16.IsSurrogate(r) {
				r = utf8.RuneError
			}
			b = utf8.AppendRune(b, r)
		default:
			b = append(b, e)
		}
		i += 2
	}
	return b
}

// hex4 reads four hex digits at s[i:]; it returns the rune and 4, or
// U+FFFD and 0 when they are not there.
func hex4(s string, i int) (rune, int) {
	if i+4 > len(s) {
		return utf8.RuneError, 0
	}
	v, err := strconv.ParseUint(s[i:i+4], 16, 32)
	if err != nil {
		return utf8.RuneError, 0
	}
	return rune(v), 4
}
