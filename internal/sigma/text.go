package sigma

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// appendFold appends s with letters lower-cased: ASCII by table, other
// runes through unicode.ToLower. Patterns and event values go through the
// same function, so case-insensitive tests are plain byte comparisons.
func appendFold(dst []byte, s string) []byte {
	dst = slices.Grow(dst, len(s))
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			dst = append(dst, asciiLower[c])
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError {
			dst = append(dst, s[i:i+n]...)
		} else {
			dst = utf8.AppendRune(dst, unicode.ToLower(r))
		}
		i += n
	}
	return dst
}

// asciiLower maps each ASCII byte to its lower case.
var asciiLower = func() (t [utf8.RuneSelf]byte) {
	for i := range t {
		t[i] = byte(i)
		if 'A' <= i && i <= 'Z' {
			t[i] += 'a' - 'A'
		}
	}
	return t
}()

// needsFold reports whether appendFold would change s.
func needsFold(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if ('A' <= c && c <= 'Z') || c >= utf8.RuneSelf {
			return true
		}
	}
	return false
}

func fold(s string) string {
	if !needsFold(s) {
		return s
	}
	return string(appendFold(nil, s))
}

func containsStr(s, sub string) bool { return strings.Contains(s, sub) }
