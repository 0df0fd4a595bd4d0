package reason

import (
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/loupe-sec/loupe/internal/detect"
	"github.com/loupe-sec/loupe/internal/event"
	"github.com/loupe-sec/loupe/internal/finding"
)

// FuzzConclusion feeds arbitrary event facts through composition: the
// sentence must stay one line, end with a period and never show an empty
// placeholder.
func FuzzConclusion(f *testing.F) {
	f.Add("WS01", "alice", "10.0.0.1", "bob", `C:\x.exe`, `installed service "X"`, "Title", int64(1553038457), int64(3), "correlation")
	f.Add("", "", "", "", "", "", "", int64(0), int64(0), "")
	f.Add(" - ", "\n", "<nil>", "null", "/", "success", "", int64(-1), int64(-5), "rule")
	f.Fuzz(func(t *testing.T, host, user, ip, target, image, what, title string, unix, count int64, source string) {
		var ts time.Time
		if unix > 0 && unix < 1<<34 {
			ts = time.Unix(unix, 0)
		}
		d := detect.Detection{
			Rule: finding.Rule{ID: "r", Title: title}, Tactic: "Execution", Source: source, Count: count,
			Techniques: []finding.Technique{{ID: "T1059", Name: "Command and Scripting Interpreter"}},
			Event:      &event.Event{ID: "e", Host: host, User: user, SrcIP: ip, TargetUser: target, Image: image, Time: ts},
			What:       what,
		}
		r := New(Options{MaxEvidence: 2})
		var out []*finding.Finding
		emit := func(f *finding.Finding) { out = append(out, f) }
		r.Add(d, emit)
		r.Add(d, emit)
		r.Flush(emit)
		if len(out) != 2 {
			t.Fatalf("got %d findings, want first and summary", len(out))
		}
		for _, f := range out {
			c := f.Conclusion
			if strings.IndexFunc(c, unicode.IsControl) >= 0 {
				t.Fatalf("control character in %q", c)
			}
			inputs := host + user + ip + target + image + what + title + source
			if !strings.HasSuffix(c, ".") || (strings.Contains(c, "<nil>") && !strings.Contains(inputs, "<nil>")) ||
				(strings.Contains(c, "0001-01-01") && !strings.Contains(inputs, "0001-01-01")) {
				t.Fatalf("bad conclusion %q", c)
			}
			if (clean(host) == "" && strings.HasPrefix(c, "On ")) || (clean(user) == "" && strings.Contains(c, "user ") && !strings.Contains(what+title+image+ip, "user")) || strings.HasPrefix(c, " ") {
				t.Fatalf("empty fact in %q", c)
			}
			if f.Priority > finding.Critical || len(f.Evidence) > 2 || f.Question == "" {
				t.Fatalf("bad finding %+v", f)
			}
		}
	})
}
