package deep

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/loupe-sec/loupe/internal/cluster"
	"github.com/loupe-sec/loupe/internal/event"
	"github.com/loupe-sec/loupe/internal/obfuscate"
)

func testBatch(t testing.TB) *batch {
	m := cluster.NewMiner(cluster.Options{})
	for i, u := range []string{"alice", "bob"} {
		m.Add(&event.Event{ID: "r" + u, Program: "sshd", Host: "db-1", User: u, Time: time.Unix(int64(i), 0),
			Message: "Failed password for " + u + " from 203.0.113.9 port 22 ssh2"})
	}
	m.Add(&event.Event{ID: "rx", Program: "app", Message: "something else"})
	return build(m.Clusters(), 3, 4, obfuscate.Options{})
}

func TestBuild(t *testing.T) {
	b := testBatch(t)
	if len(b.cRefs) != 2 || len(b.eRefs) != 3 || b.events["E1"].RecordID != "ralice" || b.ofEvent["E3"] != b.byRef["C2"] {
		t.Fatalf("refs %v %v", b.cRefs, b.eRefs)
	}
	for _, raw := range []string{"alice", "bob", "203.0.113.9", "db-1", "ralice"} {
		if strings.Contains(b.prompt, raw) {
			t.Errorf("prompt holds %q:\n%s", raw, b.prompt)
		}
	}
	for _, want := range []string{"cluster C1: template \"sshd Failed password for <*> from <IP> port <NUM> ssh2\"", "event E1: time 1970-01-01T00:00:00Z host \"[HOST-1]\" user \"[USER-1]\" text \"Failed password for [USER-1] from [EXTERNAL-IP-1] port 22 ssh2\"", "BEGIN LOG DATA", "END LOG DATA"} {
		if !strings.Contains(b.prompt, want) {
			t.Errorf("prompt lacks %q:\n%s", want, b.prompt)
		}
	}
	if b.mapper.Restore("[USER-2] on [HOST-1]") != "bob on db-1" {
		t.Error("mapper does not restore the prompt's tokens")
	}
}

func TestDecode(t *testing.T) {
	b := testBatch(t)
	item := func(fields string) string {
		base := map[string]string{"cluster": `"C1"`, "records": `["E1","E2","E1"]`, "tactic": `"credential access"`,
			"technique": `"t1110.001"`, "question": `"Q?"`, "conclusion": `"  [USER-1]   was   targeted "`, "priority": `"high"`}
		for _, kv := range strings.Split(fields, ";") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				base[k] = v
			}
		}
		var parts []string
		for k, v := range base {
			parts = append(parts, `"`+k+`":`+v)
		}
		return `{"findings":[{` + strings.Join(parts, ",") + `}]}`
	}
	cs, err := b.decode("```json\n"+item("")+"\n```", 4)
	if err != nil {
		t.Fatal(err)
	}
	c := cs[0]
	if c.tacticID != "TA0006" || c.technique.ID != "T1110.001" || c.technique.Name == "" || len(c.records) != 2 ||
		c.conclusion != "[USER-1] was targeted" || c.priority.String() != "high" {
		t.Errorf("decoded %+v", c)
	}
	for fields, want := range map[string]string{
		"cluster=\"C9\"":         "cluster",
		"records=[]":             "no records",
		"records=[\"E7\"]":       "record",
		"tactic=\"Hacking\"":     "tactic",
		"priority=\"urgent\"":    "priority",
		"technique=\"T11\"":      "technique",
		"conclusion=\"   \"":     "empty conclusion",
		"records=\"E1\"":         "JSON",
		"tactic=\"Unknown\";x=1": "",
	} {
		_, err := b.decode(item(fields), 4)
		if want == "" {
			if err != nil {
				t.Errorf("%s: %v", fields, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", fields, err, want)
		}
	}
	if _, err := b.decode(`{"findings":[]} {"more":1}`, 4); err == nil {
		t.Error("trailing data accepted")
	}
	many := `{"findings":[` + strings.Repeat(strings.TrimSuffix(strings.TrimPrefix(item(""), `{"findings":[`), `]}`)+",", 9) + strings.TrimSuffix(strings.TrimPrefix(item(""), `{"findings":[`), `]}`) + `]}`
	if cs, err := b.decode(many, 4); err != nil || len(cs) != 4 {
		t.Errorf("10 findings with a bound of 4: %d, %v", len(cs), err)
	}
}

func TestKeyText(t *testing.T) {
	a := keyText("cluster C1: events: 1234, at 2026-01-01T10:00:00Z\n  event E2: user \"[USER-12]\" pid=77")
	want := "cluster C1: events: #, at #-#-#T#:#:#Z event E2: user \"[USER-12]\" pid=#"
	if a != want {
		t.Errorf("keyText = %q, want %q", a, want)
	}
	if keyText("[USER-1] [USER-1]") == keyText("[USER-1] [USER-2]") {
		t.Error("token numbers normalised away")
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(`{"findings":[{"cluster":"C1","records":["E1"],"tactic":"Execution","technique":"T1059","question":"q","conclusion":"c","priority":"low"}]}`)
	f.Add("```\n{\"findings\":[]}\n```")
	f.Add(`{"findings":[{"cluster":"C2","records":["E3","E3"],"tactic":"unknown","technique":"","conclusion":"\u0000","priority":"info"}]}`)
	f.Add(`[USER-1] C1: 12 E4: [X-9]`)
	b := testBatch(f)
	f.Fuzz(func(t *testing.T, text string) {
		cs, err := b.decode(text, 3)
		if err == nil {
			if len(cs) > 3 {
				t.Fatalf("%d findings over the bound", len(cs))
			}
			for _, c := range cs {
				if b.byRef[c.cluster] == nil || len(c.records) == 0 || c.conclusion == "" ||
					utf8.RuneCountInString(c.conclusion) > maxConclusionRunes+1 || strings.ContainsAny(c.conclusion, "\n\r") {
					t.Fatalf("accepted %+v", c)
				}
				for _, r := range c.records {
					if b.events[r] == nil {
						t.Fatalf("unsent record %q accepted", r)
					}
				}
			}
		}
		k := keyText(text)
		if keyText(k) != k {
			t.Fatalf("keyText not idempotent: %q → %q → %q", text, k, keyText(k))
		}
	})
}
