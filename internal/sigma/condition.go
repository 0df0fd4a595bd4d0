package sigma

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// Limits on one condition.
const (
	maxConditionLen   = 8192
	maxConditionDepth = 64
)

type opKind uint8

const (
	opRef opKind = iota // one search identifier
	opAnd
	opOr
	opNot
	opOneOf // 1 of pattern / them
	opAllOf // all of pattern / them
)

// cond is a parsed condition. Before binding, opRef names an identifier
// and opOneOf/opAllOf hold a pattern ("them" for all); bind turns them
// into search indexes.
type cond struct {
	op     opKind
	name   string
	kids   []*cond
	search int
}

// parseCondition parses a Sigma condition expression: identifiers, and,
// or, not, parentheses, "1 of X", "all of X" where X is an identifier
// pattern with '*' or "them". Precedence: not, and, or.
func parseCondition(s string) (*cond, error) {
	if len(s) > maxConditionLen {
		return nil, fmt.Errorf("condition longer than %d bytes", maxConditionLen)
	}
	if strings.Contains(s, "|") {
		return nil, unsupportedf("aggregation: %q uses the deprecated Sigma v1 aggregation syntax (use a correlation rule)", s)
	}
	toks, err := lexCondition(s)
	if err != nil {
		return nil, err
	}
	p := &condParser{toks: toks}
	c, err := p.or(0)
	if err != nil {
		return nil, err
	}
	if p.i < len(p.toks) {
		return nil, fmt.Errorf("condition: unexpected %q", p.toks[p.i])
	}
	return c, nil
}

func lexCondition(s string) ([]string, error) {
	var toks []string
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(' || c == ')':
			toks = append(toks, s[i:i+1])
			i++
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\n\r()", rune(s[j])) {
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		}
	}
	if len(toks) == 0 {
		return nil, fmt.Errorf("condition is empty")
	}
	return toks, nil
}

type condParser struct {
	toks []string
	i    int
}

func (p *condParser) peek() string {
	if p.i < len(p.toks) {
		return p.toks[p.i]
	}
	return ""
}

func (p *condParser) keyword(w string) bool { return strings.EqualFold(p.peek(), w) }

func (p *condParser) or(depth int) (*cond, error) {
	left, err := p.and(depth)
	if err != nil {
		return nil, err
	}
	if !p.keyword("or") {
		return left, nil
	}
	c := &cond{op: opOr, kids: []*cond{left}}
	for p.keyword("or") {
		p.i++
		right, err := p.and(depth)
		if err != nil {
			return nil, err
		}
		c.kids = append(c.kids, right)
	}
	return c, nil
}

func (p *condParser) and(depth int) (*cond, error) {
	left, err := p.not(depth)
	if err != nil {
		return nil, err
	}
	if !p.keyword("and") {
		return left, nil
	}
	c := &cond{op: opAnd, kids: []*cond{left}}
	for p.keyword("and") {
		p.i++
		right, err := p.not(depth)
		if err != nil {
			return nil, err
		}
		c.kids = append(c.kids, right)
	}
	return c, nil
}

func (p *condParser) not(depth int) (*cond, error) {
	if depth > maxConditionDepth {
		return nil, fmt.Errorf("condition nested deeper than %d levels", maxConditionDepth)
	}
	if p.keyword("not") {
		p.i++
		x, err := p.not(depth + 1)
		if err != nil {
			return nil, err
		}
		return &cond{op: opNot, kids: []*cond{x}}, nil
	}
	return p.primary(depth)
}

func (p *condParser) primary(depth int) (*cond, error) {
	t := p.peek()
	switch {
	case t == "":
		return nil, fmt.Errorf("condition ends early")
	case t == "(":
		p.i++
		c, err := p.or(depth + 1)
		if err != nil {
			return nil, err
		}
		if p.peek() != ")" {
			return nil, fmt.Errorf("condition: missing )")
		}
		p.i++
		return c, nil
	case t == ")":
		return nil, fmt.Errorf("condition: unexpected )")
	case isReserved(t):
		return nil, fmt.Errorf("condition: unexpected %q", t)
	}
	p.i++
	if strings.EqualFold(p.peek(), "of") {
		p.i++
		target := p.peek()
		if target == "" || target == "(" || target == ")" || (isReserved(target) && !strings.EqualFold(target, "them")) {
			return nil, fmt.Errorf("condition: %s of needs an identifier pattern or them", t)
		}
		p.i++
		op := opOneOf
		switch {
		case t == "1" || strings.EqualFold(t, "any"):
		case strings.EqualFold(t, "all"):
			op = opAllOf
		default:
			return nil, fmt.Errorf("condition: %q of is not Sigma (want 1 of or all of)", t)
		}
		if strings.EqualFold(target, "them") {
			target = "them"
		}
		return &cond{op: op, name: target}, nil
	}
	return &cond{op: opRef, name: t}, nil
}

func isReserved(t string) bool {
	switch strings.ToLower(t) {
	case "and", "or", "not", "of", "them":
		return true
	}
	return false
}

// bind resolves identifiers against the rule's search names: a bare
// identifier must exist; a pattern must match at least one; "them" is
// every search not starting with an underscore.
func (c *cond) bind(names []string) (*cond, error) {
	switch c.op {
	case opRef:
		i := slices.Index(names, c.name)
		if i < 0 {
			return nil, fmt.Errorf("condition: unknown search identifier %q", c.name)
		}
		return &cond{op: opRef, name: c.name, search: i}, nil
	case opAnd, opOr, opNot:
		out := &cond{op: c.op}
		for _, k := range c.kids {
			b, err := k.bind(names)
			if err != nil {
				return nil, err
			}
			out.kids = append(out.kids, b)
		}
		return out, nil
	}
	out := &cond{op: opOr, name: c.name}
	if c.op == opAllOf {
		out.op = opAnd
	}
	for i, n := range names {
		var ok bool
		if c.name == "them" {
			ok = !strings.HasPrefix(n, "_")
		} else {
			ok, _ = path.Match(c.name, n)
			if strings.ContainsAny(c.name, "[\\") {
				ok = n == c.name
			}
		}
		if ok {
			out.kids = append(out.kids, &cond{op: opRef, name: n, search: i})
		}
	}
	if len(out.kids) == 0 {
		return nil, fmt.Errorf("condition: %q matches no search identifier", c.name)
	}
	return out, nil
}

// String renders the condition, for tests and messages.
func (c *cond) String() string {
	switch c.op {
	case opRef:
		return c.name
	case opNot:
		return "not " + c.kids[0].String()
	case opOneOf:
		return "1 of " + c.name
	case opAllOf:
		return "all of " + c.name
	}
	sep := " and "
	if c.op == opOr {
		sep = " or "
	}
	parts := make([]string, len(c.kids))
	for i, k := range c.kids {
		parts[i] = k.String()
	}
	return "(" + strings.Join(parts, sep) + ")"
}
