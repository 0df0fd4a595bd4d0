package falco

import (
	"strings"
	"testing"

	"github.com/loupe-sec/loupe/internal/attack"
)

func TestTableIsConsistent(t *testing.T) {
	rs := Rules()
	if len(rs) < 80 {
		t.Errorf("table has %d rules, want at least 80", len(rs))
	}
	seen := map[string]bool{}
	for _, r := range rs {
		key := strings.ToLower(r.Name)
		if seen[key] {
			t.Errorf("rule %q listed twice", r.Name)
		}
		seen[key] = true
		_, tactics, ok := attack.Lookup(r.Technique)
		if !ok {
			t.Errorf("%s: unknown technique %s", r.Name, r.Technique)
			continue
		}
		ta, ok := attack.TacticByName(r.Tactic)
		if !ok {
			t.Errorf("%s: unknown tactic %s", r.Name, r.Tactic)
		}
		found := false
		for _, x := range tactics {
			found = found || x == ta
		}
		if !found {
			t.Errorf("%s: technique %s is not under tactic %s", r.Name, r.Technique, r.Tactic)
		}
		switch r.FP {
		case FPLow, FPMedium, FPHigh:
		default:
			t.Errorf("%s: false-positive likelihood %q", r.Name, r.FP)
		}
		if r.Vector == "" || len(r.Causes) == 0 {
			t.Errorf("%s: missing vector or causes", r.Name)
		}
	}
}

func TestLookupIgnoresCaseAndSpace(t *testing.T) {
	r, ok := Lookup("  terminal SHELL in container ")
	if !ok || r.Technique != "T1059.004" || r.Tactic != "execution" {
		t.Fatalf("Lookup = %+v, %v", r, ok)
	}
	if _, ok := Lookup("no such rule"); ok {
		t.Fatal("unknown rule found")
	}
}
