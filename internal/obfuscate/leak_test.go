package obfuscate

import (
	"bufio"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

type trickyLine struct {
	Text      string   `json:"text"`
	Sensitive []string `json:"sensitive"`
}

func readTricky(tb testing.TB) []trickyLine {
	tb.Helper()
	f, err := os.Open("testdata/tricky.jsonl")
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var lines []trickyLine
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l trickyLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			tb.Fatalf("tricky.jsonl line %d: %v", len(lines)+1, err)
		}
		if len(l.Sensitive) == 0 {
			tb.Fatalf("tricky.jsonl line %d lists no sensitive value", len(lines)+1)
		}
		lines = append(lines, l)
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return lines
}

// TestLeak checks that no listed sensitive value of the tricky corpus
// survives obfuscation, in either structure mode, and that Restore gives
// back the original text of lines without secrets.
func TestLeak(t *testing.T) {
	lines := readTricky(t)
	if len(lines) < 40 {
		t.Fatalf("only %d corpus lines", len(lines))
	}
	for _, keep := range []bool{true, false} {
		m := New(Options{PreserveStructure: keep})
		for i, l := range lines {
			before := m.Summary()["secret"]
			out := m.Text(l.Text)
			for _, v := range l.Sensitive {
				if strings.Contains(out, v) {
					t.Errorf("preserve=%v line %d: %q leaked in %q", keep, i+1, v, out)
				}
			}
			if keep && m.Summary()["secret"] == before {
				if back := m.Restore(out); back != l.Text {
					t.Errorf("line %d: Restore(Text(s)) = %q, want %q", i+1, back, l.Text)
				}
			}
		}
	}
}

// TestLeakFields runs the JSON lines of the corpus through Fields, one
// flattened key per leaf, and checks the same values do not survive.
func TestLeakFields(t *testing.T) {
	m := preserve()
	n := 0
	for i, l := range readTricky(t) {
		var obj map[string]any
		if json.Unmarshal([]byte(l.Text), &obj) != nil {
			continue
		}
		n++
		flat := map[string]string{}
		flatten("", obj, flat)
		out := m.Fields(flat)
		for k, v := range out {
			for _, s := range l.Sensitive {
				if strings.Contains(v, s) {
					t.Errorf("line %d field %q: %q leaked in %q", i+1, k, s, v)
				}
			}
		}
	}
	if n < 5 {
		t.Fatalf("only %d JSON lines in the corpus", n)
	}
}

func flatten(prefix string, v any, out map[string]string) {
	switch x := v.(type) {
	case map[string]any:
		for k, c := range x {
			if prefix != "" {
				k = prefix + "." + k
			}
			flatten(k, c, out)
		}
	case string:
		out[prefix] = x
	default:
		b, _ := json.Marshal(x)
		out[prefix] = string(b)
	}
}
