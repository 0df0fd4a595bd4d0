package reason

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/loupe-sec/loupe/internal/attack"
	"github.com/loupe-sec/loupe/internal/detect"
	"github.com/loupe-sec/loupe/internal/event"
	"github.com/loupe-sec/loupe/internal/finding"
)

var (
	t0  = time.Date(2019, 3, 19, 23, 34, 17, 250e6, time.UTC)
	svc = []finding.Technique{{ID: "T1543.003", Name: "Create or Modify System Process: Windows Service"}}
	bf  = []finding.Technique{{ID: "T1110.001", Name: "Brute Force: Password Guessing"}}
)

func serviceDetection() detect.Detection {
	return detect.Detection{
		Rule:       finding.Rule{ID: "loupe-win-service-install", Title: "Service installed", Author: "loupe"},
		Tactic:     "Persistence",
		TacticID:   "TA0003",
		Techniques: svc,
		Priority:   finding.Medium,
		Source:     "rule",
		Event: &event.Event{
			ID: "rec-7045", Index: "idx1", Line: 42, Time: t0, Host: "WS01", User: "alice",
			EventID: 7045, Channel: "System", Message: "A service was installed in the system.",
		},
		Count: 1,
		Key:   "loupe-win-service-install|WS01|PSEXESVC",
		What:  `installed service "PSEXESVC" running %SystemRoot%\PSEXESVC.exe`,
	}
}

func bruteForceDetection() detect.Detection {
	base := time.Date(2024, 5, 1, 10, 0, 1, 0, time.UTC)
	var rel []finding.Evidence
	for i, u := range []string{"root", "admin", "oracle"} {
		rel = append(rel, finding.Evidence{
			RecordID: fmt.Sprintf("fail-%d", i), Line: int64(i + 1), Time: base.Add(time.Duration(i) * 28 * time.Second),
			Host: "web01", User: u, Summary: "Failed password for " + u + " from 198.51.100.23 port 4242 ssh2",
		})
	}
	return detect.Detection{
		Rule:       finding.Rule{ID: "loupe-bruteforce-success", Title: "Brute force then successful logon"},
		Tactic:     "Credential Access",
		TacticID:   "TA0006",
		Techniques: bf,
		Priority:   finding.High,
		Source:     "correlation",
		Event: &event.Event{
			ID: "ok-1", Line: 20, Time: base.Add(62 * time.Second), Host: "web01", User: "root",
			SrcIP: "198.51.100.23", Program: "sshd", Message: "Accepted password for root from 198.51.100.23 port 4243 ssh2",
		},
		Related: rel,
		Count:   16,
		Key:     "loupe-bruteforce-success|web01|198.51.100.23",
		What:    "made 15 failed SSH logon attempts, then logged in successfully as root",
	}
}

func collect(r *Reasoner, ds ...detect.Detection) []*finding.Finding {
	var out []*finding.Finding
	for _, d := range ds {
		r.Add(d, func(f *finding.Finding) { out = append(out, f) })
	}
	return out
}

func TestQuestionCatalogComplete(t *testing.T) {
	tactics := attack.Tactics()
	if len(tactics) != 14 {
		t.Fatalf("attack lists %d tactics, want 14", len(tactics))
	}
	seen := map[string]string{}
	for _, tac := range tactics {
		q := Question(tac.Name)
		if q == FallbackQuestion || !strings.HasSuffix(q, "?") {
			t.Errorf("Question(%q) = %q, want a tactic-specific question", tac.Name, q)
		}
		if other, dup := seen[q]; dup {
			t.Errorf("%s and %s share the question %q", tac.Name, other, q)
		}
		seen[q] = tac.Name
		for _, form := range []string{strings.ToLower(tac.Name), tac.ID, tac.Short} {
			if got := Question(form); got != q {
				t.Errorf("Question(%q) = %q, want %q", form, got, q)
			}
		}
	}
	if len(questions) != len(tactics) {
		t.Errorf("catalog has %d questions for %d tactics", len(questions), len(tactics))
	}
	if got := Question("TA0008"); got != "How did the attacker move laterally?" {
		t.Errorf("Question(TA0008) = %q", got)
	}
	if got := Question("Initial Access"); got != "What is the initial access vector?" {
		t.Errorf("Question(Initial Access) = %q", got)
	}
	if got := Question("Not A Tactic"); got != FallbackQuestion {
		t.Errorf("unknown tactic: %q", got)
	}
}

var junk = regexp.MustCompile(`""|<nil>|0001-01-01|\(\)|  | ,| \.|, ,|''`)

func checkSentence(t *testing.T, s string) {
	t.Helper()
	if m := junk.FindString(s); m != "" {
		t.Errorf("conclusion contains %q: %s", m, s)
	}
	if !strings.HasSuffix(s, ".") {
		t.Errorf("conclusion does not end with a period: %s", s)
	}
	if s != capitalize(s) {
		t.Errorf("conclusion is not capitalised: %s", s)
	}
}

func TestConclusionSingleEvent(t *testing.T) {
	fs := collect(New(Options{}), serviceDetection())
	if len(fs) != 1 {
		t.Fatalf("got %d findings, want 1", len(fs))
	}
	f := fs[0]
	want := `On WS01 at 2019-03-19 23:34:17 UTC, user alice installed service "PSEXESVC" running %SystemRoot%\PSEXESVC.exe (rule "Service installed", T1543.003 Create or Modify System Process: Windows Service).`
	if f.Conclusion != want {
		t.Errorf("conclusion\n got: %s\nwant: %s", f.Conclusion, want)
	}
	checkSentence(t, f.Conclusion)
	if f.Question != "What is the persistence mechanism?" || f.Tactic != "Persistence" || f.TacticID != "TA0003" {
		t.Errorf("question/tactic = %q %q %q", f.Question, f.Tactic, f.TacticID)
	}
	if f.Priority != finding.Medium || f.Host != "WS01" || f.User != "alice" || f.Count != 1 || f.Source != "rule" {
		t.Errorf("fields: %+v", f)
	}
	if len(f.Evidence) != 1 {
		t.Fatalf("evidence: %+v", f.Evidence)
	}
	e := f.Evidence[0]
	if e.RecordID != "rec-7045" || e.Index != "idx1" || e.Line != 42 || !e.Time.Equal(t0) || e.Host != "WS01" || e.User != "alice" || e.Summary != "A service was installed in the system." {
		t.Errorf("evidence: %+v", e)
	}
	if !f.First.Equal(t0) || !f.Last.Equal(t0) {
		t.Errorf("first/last = %v %v", f.First, f.Last)
	}
}

func TestConclusionCorrelation(t *testing.T) {
	d := bruteForceDetection()
	fs := collect(New(Options{}), d)
	if len(fs) != 1 {
		t.Fatalf("got %d findings", len(fs))
	}
	f := fs[0]
	want := `On web01 between 2024-05-01 10:00:01 and 10:01:03 UTC, 198.51.100.23 made 15 failed SSH logon attempts, then logged in successfully as root; 16 events in total, involving accounts admin and oracle (rule "Brute force then successful logon", T1110.001 Brute Force: Password Guessing).`
	if f.Conclusion != want {
		t.Errorf("conclusion\n got: %s\nwant: %s", f.Conclusion, want)
	}
	checkSentence(t, f.Conclusion)
	if f.Priority != d.Priority {
		t.Errorf("priority %v, want the detection's %v", f.Priority, d.Priority)
	}
	if f.Count != 16 || len(f.Evidence) != 4 || f.Evidence[0].RecordID != "fail-0" || f.Evidence[3].RecordID != "ok-1" {
		t.Errorf("count %d evidence %+v", f.Count, f.Evidence)
	}
	if f.User != "" {
		t.Errorf("the actor of a logon correlation is the source address, not user %q", f.User)
	}
}

func TestConclusionMissingFacts(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*detect.Detection)
		want   string
	}{
		{"no host", func(d *detect.Detection) { d.Event.Host = "" },
			`At 2019-03-19 23:34:17 UTC, user alice installed service "PSEXESVC" running %SystemRoot%\PSEXESVC.exe (rule "Service installed", T1543.003 Create or Modify System Process: Windows Service).`},
		{"no user", func(d *detect.Detection) { d.Event.User = "" },
			`On WS01 at 2019-03-19 23:34:17 UTC, an unidentified actor installed service "PSEXESVC" running %SystemRoot%\PSEXESVC.exe (rule "Service installed", T1543.003 Create or Modify System Process: Windows Service).`},
		{"no time", func(d *detect.Detection) { d.Event.Time = time.Time{} },
			`On WS01, user alice installed service "PSEXESVC" running %SystemRoot%\PSEXESVC.exe (rule "Service installed", T1543.003 Create or Modify System Process: Windows Service).`},
		{"nothing but the observation", func(d *detect.Detection) {
			d.Event.Host, d.Event.User, d.Event.Time = "", "", time.Time{}
			d.Techniques, d.Rule.Title = nil, ""
		}, `An unidentified actor installed service "PSEXESVC" running %SystemRoot%\PSEXESVC.exe (rule "loupe-win-service-install").`},
		{"no observation", func(d *detect.Detection) { d.What = "" },
			`On WS01 at 2019-03-19 23:34:17 UTC, activity of user alice matched rule "Service installed" (T1543.003 Create or Modify System Process: Windows Service).`},
		{"user given as dash", func(d *detect.Detection) { d.Event.User = " - " },
			`On WS01 at 2019-03-19 23:34:17 UTC, an unidentified actor installed service "PSEXESVC" running %SystemRoot%\PSEXESVC.exe (rule "Service installed", T1543.003 Create or Modify System Process: Windows Service).`},
		{"process and source address", func(d *detect.Detection) {
			d.Event.User = ""
			d.Event.Image = `C:\Windows\System32\services.exe`
			d.Event.SrcIP = "10.1.2.3"
			d.Event.TargetUser = "svc_admin"
		}, `On WS01 at 2019-03-19 23:34:17 UTC, 10.1.2.3 installed service "PSEXESVC" running %SystemRoot%\PSEXESVC.exe as account svc_admin (rule "Service installed", T1543.003 Create or Modify System Process: Windows Service).`},
		{"host named in the observation", func(d *detect.Detection) { d.What = "installed a service on ws01" },
			`At 2019-03-19 23:34:17 UTC, user alice installed a service on ws01 (rule "Service installed", T1543.003 Create or Modify System Process: Windows Service).`},
		{"control characters", func(d *detect.Detection) { d.Event.User = "al\nice\t" },
			`On WS01 at 2019-03-19 23:34:17 UTC, user al ice installed service "PSEXESVC" running %SystemRoot%\PSEXESVC.exe (rule "Service installed", T1543.003 Create or Modify System Process: Windows Service).`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := serviceDetection()
			ev := *d.Event
			d.Event = &ev
			c.mutate(&d)
			fs := collect(New(Options{}), d)
			if len(fs) != 1 {
				t.Fatalf("got %d findings", len(fs))
			}
			if fs[0].Conclusion != c.want {
				t.Errorf("\n got: %s\nwant: %s", fs[0].Conclusion, c.want)
			}
			checkSentence(t, fs[0].Conclusion)
		})
	}
}

func TestWhen(t *testing.T) {
	a := time.Date(2024, 1, 2, 23, 59, 1, 0, time.UTC)
	cases := []struct {
		first, last time.Time
		want        string
	}{
		{time.Time{}, time.Time{}, ""},
		{a, time.Time{}, "at 2024-01-02 23:59:01 UTC"},
		{time.Time{}, a, "at 2024-01-02 23:59:01 UTC"},
		{a, a.Add(500 * time.Millisecond), "at 2024-01-02 23:59:01 UTC"},
		{a, a.Add(90 * time.Second), "between 2024-01-02 23:59:01 and 2024-01-03 00:00:31 UTC"},
		{a.Add(-time.Hour), a, "between 2024-01-02 22:59:01 and 23:59:01 UTC"},
		{a.In(time.FixedZone("CET", 3600)), time.Time{}, "at 2024-01-02 23:59:01 UTC"},
	}
	for _, c := range cases {
		if got := when(c.first, c.last); got != c.want {
			t.Errorf("when(%v, %v) = %q, want %q", c.first, c.last, got, c.want)
		}
	}
}

func TestThousandsAndNames(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234: "1,234", 1234567: "1,234,567", -5: "-5"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
	if got := joinNames([]string{"a", "b", "c"}, 0, "others"); got != "a, b and c" {
		t.Errorf("joinNames = %q", got)
	}
	if got := joinNames([]string{"a", "b"}, 4, "others"); got != "a, b and 4 others" {
		t.Errorf("joinNames = %q", got)
	}
	if got := truncate(strings.Repeat("é", 400), 300); len([]rune(got)) != 300 || !strings.HasSuffix(got, "…") {
		t.Errorf("truncate gives %d runes", len([]rune(got)))
	}
}

func TestStreamingAndRepeatSummary(t *testing.T) {
	r := New(Options{MaxEvidence: 3})
	var out []*finding.Finding
	emit := func(f *finding.Finding) { out = append(out, f) }

	const n = 1234
	for i := 0; i < n; i++ {
		d := serviceDetection()
		ev := *d.Event
		ev.ID = fmt.Sprintf("rec-%d", i)
		ev.Time = t0.Add(time.Duration(i) * time.Second)
		d.Event = &ev
		r.Add(d, emit)
		if i == 0 && len(out) != 1 {
			t.Fatalf("first detection must emit at once, got %d findings", len(out))
		}
	}
	if len(out) != 1 {
		t.Fatalf("repeats must not emit: got %d findings before Flush", len(out))
	}
	r.Flush(emit)
	if len(out) != 2 {
		t.Fatalf("Flush must emit one summary: got %d findings", len(out))
	}
	s := out[1]
	if s.Count != n {
		t.Errorf("summary count = %d, want %d", s.Count, n)
	}
	if len(s.Evidence) != 3 || s.Evidence[0].RecordID != "rec-0" || s.Evidence[2].RecordID != "rec-2" {
		t.Errorf("summary evidence: %+v", s.Evidence)
	}
	if !s.First.Equal(t0) || !s.Last.Equal(t0.Add((n-1)*time.Second)) {
		t.Errorf("summary span %v – %v", s.First, s.Last)
	}
	if s.ID == out[0].ID {
		t.Errorf("summary and first finding share id %s", s.ID)
	}
	want := `On WS01, user alice installed service "PSEXESVC" running %SystemRoot%\PSEXESVC.exe 1,234 times between 2019-03-19 23:34:17 and 23:54:50 UTC; the first 3 events are linked (rule "Service installed", T1543.003 Create or Modify System Process: Windows Service).`
	if s.Conclusion != want {
		t.Errorf("summary conclusion\n got: %s\nwant: %s", s.Conclusion, want)
	}
	checkSentence(t, s.Conclusion)

	// Flush empties the table: nothing more to say.
	out = out[:0]
	r.Flush(emit)
	if len(out) != 0 {
		t.Errorf("second Flush emitted %d findings", len(out))
	}
}

func TestSingleDetectionHasNoSummary(t *testing.T) {
	r := New(Options{})
	var out []*finding.Finding
	r.Add(serviceDetection(), func(f *finding.Finding) { out = append(out, f) })
	r.Flush(func(f *finding.Finding) { out = append(out, f) })
	if len(out) != 1 {
		t.Errorf("got %d findings, want only the first", len(out))
	}
}

func TestSummaryNamesSeveralUsers(t *testing.T) {
	r := New(Options{})
	var out []*finding.Finding
	emit := func(f *finding.Finding) { out = append(out, f) }
	for i, u := range []string{"alice", "bob", "alice", "carol"} {
		d := serviceDetection()
		ev := *d.Event
		ev.ID, ev.User, ev.Time = fmt.Sprint("r", i), u, t0.Add(time.Duration(i)*time.Minute)
		d.Event = &ev
		r.Add(d, emit)
	}
	r.Flush(emit)
	if len(out) != 2 {
		t.Fatalf("got %d findings", len(out))
	}
	s := out[1]
	if !strings.Contains(s.Conclusion, "users alice, bob and carol installed") || !strings.Contains(s.Conclusion, " 4 times between 2019-03-19 23:34:17 and 23:37:17 UTC") {
		t.Errorf("summary: %s", s.Conclusion)
	}
	if s.User != "" {
		t.Errorf("summary over several users names user %q", s.User)
	}
	checkSentence(t, s.Conclusion)
}

func TestTacticNormalised(t *testing.T) {
	d := serviceDetection()
	d.Tactic, d.TacticID = "", "TA0003"
	fs := collect(New(Options{}), d)
	if fs[0].Tactic != "Persistence" || fs[0].TacticID != "TA0003" || fs[0].Question != "What is the persistence mechanism?" {
		t.Errorf("tactic given by id: %q %q %q", fs[0].Tactic, fs[0].TacticID, fs[0].Question)
	}
	d.Tactic, d.TacticID = "Made Up", ""
	fs = collect(New(Options{}), d)
	if fs[0].Tactic != "Made Up" || fs[0].Question != FallbackQuestion {
		t.Errorf("unknown tactic: %q %q", fs[0].Tactic, fs[0].Question)
	}
}

func TestEvidenceCap(t *testing.T) {
	d := bruteForceDetection()
	fs := collect(New(Options{MaxEvidence: 2}), d)
	ev := fs[0].Evidence
	if len(ev) != 2 || ev[0].RecordID != "fail-0" || ev[1].RecordID != "ok-1" {
		t.Errorf("capped evidence must keep the oldest related and the conclusive event: %+v", ev)
	}
	if fs[0].Count != 16 {
		t.Errorf("count %d must not shrink with the evidence cap", fs[0].Count)
	}
}

func TestLRUEviction(t *testing.T) {
	r := New(Options{MaxGroups: 10})
	firsts, summaries := 0, 0
	emit := func(f *finding.Finding) {
		if strings.Contains(f.Conclusion, " 2 times") {
			summaries++
		} else {
			firsts++
		}
	}
	const keys = 1000
	for k := 0; k < keys; k++ {
		for rep := 0; rep < 2; rep++ {
			d := serviceDetection()
			ev := *d.Event
			ev.ID = fmt.Sprintf("k%d-r%d", k, rep)
			d.Event = &ev
			d.Key = fmt.Sprint("key-", k)
			r.Add(d, emit)
			if r.lru.Len() > 10 || len(r.groups) > 10 {
				t.Fatalf("group table grew to %d/%d entries", r.lru.Len(), len(r.groups))
			}
		}
	}
	if summaries != keys-10 {
		t.Errorf("before Flush: %d summaries from evictions, want %d", summaries, keys-10)
	}
	r.Flush(emit)
	if firsts != keys || summaries != keys {
		t.Errorf("got %d first findings and %d summaries, want %d each", firsts, summaries, keys)
	}
	if len(r.groups) != 0 || r.lru.Len() != 0 {
		t.Errorf("table not empty after Flush")
	}
}

func TestLRUKeepsRecentlyUsed(t *testing.T) {
	r := New(Options{MaxGroups: 2})
	var out []*finding.Finding
	emit := func(f *finding.Finding) { out = append(out, f) }
	add := func(key, id string) {
		d := serviceDetection()
		ev := *d.Event
		ev.ID = id
		d.Event, d.Key = &ev, key
		r.Add(d, emit)
	}
	add("a", "1")
	add("b", "2")
	add("a", "3") // a is now most recent
	add("c", "4") // evicts b (single, no summary)
	add("a", "5") // a still held: no new finding
	if len(out) != 3 {
		t.Fatalf("got %d findings, want 3 first findings", len(out))
	}
	r.Flush(emit)
	if len(out) != 4 || out[3].Count != 3 {
		t.Errorf("want one summary for a with count 3, got %d findings", len(out))
	}
}

func TestStableIDs(t *testing.T) {
	run := func() []string {
		r := New(Options{})
		var ids []string
		emit := func(f *finding.Finding) { ids = append(ids, f.ID) }
		r.Add(serviceDetection(), emit)
		r.Add(serviceDetection(), emit)
		r.Add(bruteForceDetection(), emit)
		r.Flush(emit)
		return ids
	}
	a, b := run(), run()
	if len(a) != 3 {
		t.Fatalf("got %d ids", len(a))
	}
	if strings.Join(a, ",") != strings.Join(b, ",") {
		t.Errorf("ids differ between runs: %v vs %v", a, b)
	}
	seen := map[string]bool{}
	for _, id := range a {
		if len(id) != 16 || seen[id] {
			t.Errorf("id %q is not a distinct 16-digit hex id", id)
		}
		seen[id] = true
	}
	d := serviceDetection()
	ev := *d.Event
	ev.ID = "other"
	d.Event = &ev
	var other string
	New(Options{}).Add(d, func(f *finding.Finding) { other = f.ID })
	if other == a[0] {
		t.Errorf("a different first record must give a different id")
	}
}

func TestNilEvent(t *testing.T) {
	d := bruteForceDetection()
	d.Event = nil
	fs := collect(New(Options{}), d)
	if len(fs) != 1 || len(fs[0].Evidence) != 3 || fs[0].Host != "web01" {
		t.Fatalf("finding without a conclusive event: %+v", fs)
	}
	checkSentence(t, fs[0].Conclusion)
}

func BenchmarkAddRepeats(b *testing.B) {
	r := New(Options{})
	d := serviceDetection()
	emit := func(*finding.Finding) {}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		d.Key = "key-" + string(rune('a'+n%16))
		r.Add(d, emit)
		n++
	}
	r.Flush(emit)
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkAddDistinct(b *testing.B) {
	r := New(Options{MaxGroups: 1000})
	d := bruteForceDetection()
	emit := func(*finding.Finding) {}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		d.Key = fmt.Sprint("key-", n)
		r.Add(d, emit)
		n++
	}
	r.Flush(emit)
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}
