package sigma

import (
	"strings"
	"unicode/utf8"
)

// piece is one part of a Sigma string value: literal text, or a wildcard
// ('*' any run of characters, '?' exactly one character).
type piece struct {
	lit  string
	wild byte
}

// sigmaString is a Sigma string value split into literals and wildcards.
type sigmaString []piece

// parseSigmaString reads a Sigma string value: '*' and '?' are wildcards,
// and a backslash escapes '*', '?' or another backslash; any other
// backslash is literal (so C:\Windows needs no escaping).
func parseSigmaString(s string) sigmaString {
	var out sigmaString
	var lit []byte
	flush := func() {
		if len(lit) > 0 {
			out = append(out, piece{lit: string(lit)})
			lit = lit[:0]
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s) && (s[i+1] == '*' || s[i+1] == '?' || s[i+1] == '\\'):
			lit = append(lit, s[i+1])
			i++
		case c == '*' || c == '?':
			flush()
			out = append(out, piece{wild: c})
		default:
			lit = append(lit, c)
		}
	}
	flush()
	return out
}

// plain is a value made of one literal only (no wildcard).
func plainString(s string) sigmaString {
	if s == "" {
		return nil
	}
	return sigmaString{{lit: s}}
}

func (v sigmaString) hasWildcard() bool {
	for _, p := range v {
		if p.wild != 0 {
			return true
		}
	}
	return false
}

// text is the literal text of a value without wildcards.
func (v sigmaString) text() string {
	var b strings.Builder
	for _, p := range v {
		b.WriteString(p.lit)
	}
	return b.String()
}

// mapLiterals applies f to every literal piece.
func (v sigmaString) mapLiterals(f func(string) string) sigmaString {
	out := make(sigmaString, len(v))
	for i, p := range v {
		if p.wild == 0 {
			p.lit = f(p.lit)
		}
		out[i] = p
	}
	return out
}

// String renders the value back in Sigma syntax (escaping literal
// wildcards), for messages and tests.
func (v sigmaString) String() string {
	var b strings.Builder
	for _, p := range v {
		if p.wild != 0 {
			b.WriteByte(p.wild)
			continue
		}
		for i := 0; i < len(p.lit); i++ {
			if c := p.lit[i]; c == '*' || c == '?' || c == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(p.lit[i])
		}
	}
	return b.String()
}

type patKind uint8

const (
	patEqual patKind = iota
	patPrefix
	patSuffix
	patContains
	patAny      // "*": any present value
	patSegments // literals separated by '*'
	patGlob     // has '?'
)

// pattern is a compiled string test. Literals are folded to lower case
// unless the test is case-sensitive; the value is then folded the same way.
type pattern struct {
	kind       patKind
	lit        string   // equal, prefix, suffix, contains
	segs       []string // segments
	head, tail bool     // segments: first one anchored at start, last at end
	glob       []gtok   // glob
}

type gtok struct {
	kind byte // 0 literal byte, '*' or '?'
	b    byte
}

// compilePattern turns a value into the cheapest literal test that decides
// it; only values with '?' need the general matcher. It never uses regexp.
func compilePattern(v sigmaString, cased bool) pattern {
	// Normalise: fold, join adjacent literals, collapse '*' runs.
	var ps []piece
	glob := false
	for _, p := range v {
		switch {
		case p.wild == '*':
			if len(ps) > 0 && ps[len(ps)-1].wild == '*' {
				continue
			}
			ps = append(ps, p)
		case p.wild == '?':
			glob = true
			ps = append(ps, p)
		default:
			lit := p.lit
			if !cased {
				lit = fold(lit)
			}
			if lit == "" {
				continue
			}
			if n := len(ps); n > 0 && ps[n-1].wild == 0 {
				ps[n-1].lit += lit
				continue
			}
			ps = append(ps, piece{lit: lit})
		}
	}
	if glob {
		var toks []gtok
		for _, p := range ps {
			if p.wild != 0 {
				toks = append(toks, gtok{kind: p.wild})
				continue
			}
			for i := 0; i < len(p.lit); i++ {
				toks = append(toks, gtok{b: p.lit[i]})
			}
		}
		return pattern{kind: patGlob, glob: toks}
	}
	star := func(i int) bool { return i >= 0 && i < len(ps) && ps[i].wild == '*' }
	switch {
	case len(ps) == 0:
		return pattern{kind: patEqual}
	case len(ps) == 1 && star(0):
		return pattern{kind: patAny}
	case len(ps) == 1:
		return pattern{kind: patEqual, lit: ps[0].lit}
	case len(ps) == 2 && star(1):
		return pattern{kind: patPrefix, lit: ps[0].lit}
	case len(ps) == 2 && star(0):
		return pattern{kind: patSuffix, lit: ps[1].lit}
	case len(ps) == 3 && star(0) && star(2):
		return pattern{kind: patContains, lit: ps[1].lit}
	}
	p := pattern{kind: patSegments, head: !star(0), tail: !star(len(ps) - 1)}
	for _, x := range ps {
		if x.wild == 0 {
			p.segs = append(p.segs, x.lit)
		}
	}
	return p
}

// match tests s (folded when the pattern is case-insensitive).
func (p *pattern) match(s string) bool {
	switch p.kind {
	case patEqual:
		return s == p.lit
	case patPrefix:
		return strings.HasPrefix(s, p.lit)
	case patSuffix:
		return strings.HasSuffix(s, p.lit)
	case patContains:
		return strings.Contains(s, p.lit)
	case patAny:
		return true
	case patSegments:
		segs := p.segs
		if p.head {
			if !strings.HasPrefix(s, segs[0]) {
				return false
			}
			s = s[len(segs[0]):]
			segs = segs[1:]
		}
		if p.tail {
			last := segs[len(segs)-1]
			if !strings.HasSuffix(s, last) {
				return false
			}
			s = s[:len(s)-len(last)]
			segs = segs[:len(segs)-1]
		}
		for _, seg := range segs {
			i := strings.Index(s, seg)
			if i < 0 {
				return false
			}
			s = s[i+len(seg):]
		}
		return true
	}
	return globMatch(p.glob, s)
}

// globMatch is the linear-backtracking wildcard match: on a mismatch it
// retries from the last '*' one character further. '?' is one UTF-8
// character.
func globMatch(toks []gtok, s string) bool {
	ti, si := 0, 0
	starT, starS := -1, 0
	for si < len(s) {
		if ti < len(toks) {
			switch t := toks[ti]; t.kind {
			case '*':
				starT, starS = ti, si
				ti++
				continue
			case '?':
				_, n := utf8.DecodeRuneInString(s[si:])
				si += n
				ti++
				continue
			default:
				if s[si] == t.b {
					si++
					ti++
					continue
				}
			}
		}
		if starT < 0 {
			return false
		}
		_, n := utf8.DecodeRuneInString(s[starS:])
		starS += n
		ti, si = starT+1, starS
	}
	for ti < len(toks) && toks[ti].kind == '*' {
		ti++
	}
	return ti == len(toks)
}

// literal returns the longest literal a matching (folded) value must
// contain, for the prefilter; "" when there is none.
func (p *pattern) literal() string {
	switch p.kind {
	case patEqual, patPrefix, patSuffix, patContains:
		return p.lit
	case patSegments:
		best := ""
		for _, s := range p.segs {
			if len(s) > len(best) {
				best = s
			}
		}
		return best
	case patGlob:
		best, cur := "", []byte{}
		for _, t := range p.glob {
			if t.kind == 0 {
				cur = append(cur, t.b)
				continue
			}
			if len(cur) > len(best) {
				best = string(cur)
			}
			cur = cur[:0]
		}
		if len(cur) > len(best) {
			best = string(cur)
		}
		return best
	}
	return ""
}
