package sigma

import (
	"strings"
	"testing"
)

func TestParseCondition(t *testing.T) {
	for in, want := range map[string]string{
		"a":                         "a",
		"a and b or c":              "((a and b) or c)",
		"a or b and c":              "(a or (b and c))",
		"not a and b":               "(not a and b)",
		"not (a and b)":             "not (a and b)",
		"a and not not b":           "(a and not not b)",
		"1 of sel* and not 1 of f*": "(1 of sel* and not 1 of f*)",
		"all of them":               "all of them",
		"1 of them or (a)":          "(1 of them or a)",
		"a AND b OR NOT c":          "((a and b) or not c)",
		"((a))":                     "a",
		"a and b and c":             "(a and b and c)",
		"any of x*":                 "1 of x*",
	} {
		c, err := parseCondition(in)
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		if got := c.String(); got != want {
			t.Errorf("%q: got %s, want %s", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"":                "empty",
		"a and":           "ends early",
		"(a":              "missing )",
		"a)":              "unexpected",
		"a b":             "unexpected",
		"2 of x*":         "not Sigma",
		"1 of":            "needs an identifier",
		"and":             "unexpected",
		"a | count() > 1": "aggregation",
		strings.Repeat("(", 100) + "a" + strings.Repeat(")", 100): "deeper",
		strings.Repeat("not ", 100) + "a":                         "deeper",
	} {
		if _, err := parseCondition(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want one containing %q", in, err, want)
		}
	}
}

func TestBindCondition(t *testing.T) {
	names := []string{"sel_a", "sel_b", "_x", "filter"}
	c, _ := parseCondition("1 of sel_* and not filter")
	b, err := c.bind(names)
	if err != nil || b.String() != "((sel_a or sel_b) and not filter)" {
		t.Errorf("bind: %v %v", b, err)
	}
	c, _ = parseCondition("all of them")
	if b, _ := c.bind(names); b.String() != "(sel_a and sel_b and filter)" {
		t.Errorf("them: %s", b)
	}
	c, _ = parseCondition("1 of _*")
	if b, _ := c.bind(names); b.String() != "(_x)" {
		t.Errorf("_*: %s", b)
	}
}
