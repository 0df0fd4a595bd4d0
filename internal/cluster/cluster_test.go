package cluster

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loupe-sec/loupe/internal/detect"
	"github.com/loupe-sec/loupe/internal/event"
	"github.com/loupe-sec/loupe/internal/finding"
	"github.com/loupe-sec/loupe/internal/source"
)

func syslogEvent(id, prog, msg string) *event.Event {
	return &event.Event{ID: id, Format: event.FormatSyslog, Program: prog, Message: msg, Host: "web-1",
		Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func TestTokensMask(t *testing.T) {
	got := Tokens(`Failed password for alice from 203.0.113.9 port 52144 ssh2 pid=4242 c=(0x1f) id=3f2a9c1e7b44 /var/log/x.log [fe80::1]:22 2026-01-01T10:00:00Z 123e4567-e89b-12d3-a456-426614174000 C:\Windows\System32\cmd.exe`, 0)
	want := []string{"Failed", "password", "for", "alice", "from", MaskIP, "port", MaskNum, "ssh2", "pid=" + MaskNum,
		"c=" + MaskHex, "id=" + MaskHex, MaskPath, MaskIP, MaskNum, MaskHex, MaskPath}
	if !slices.Equal(got, want) {
		t.Errorf("tokens\n got %q\nwant %q", got, want)
	}
	if n := len(Tokens(strings.Repeat("a ", 100), 10)); n != 10 {
		t.Errorf("%d tokens, want the bound 10", n)
	}
	if got := Tokens(strings.Repeat("x", 300), 0); len(got[0]) != maxTokenBytes {
		t.Errorf("long word kept %d bytes", len(got[0]))
	}
}

func TestTemplates(t *testing.T) {
	m := NewMiner(Options{})
	users := []string{"alice", "bob", "carol", "dave"}
	for i, u := range users {
		m.Add(syslogEvent(fmt.Sprint("f", i), "sshd", fmt.Sprintf("Failed password for %s from 10.0.0.%d port %d ssh2", u, i+1, 40000+i)))
		m.Add(syslogEvent(fmt.Sprint("a", i), "sshd", fmt.Sprintf("Accepted publickey for %s from 10.0.0.%d port %d ssh2: RSA SHA256:abc", u, i+1, 50000+i)))
		m.Add(syslogEvent(fmt.Sprint("c", i), "CRON", fmt.Sprintf("pam_unix(cron:session): session opened for user %s by (uid=0)", u)))
	}
	cs := m.Clusters()
	var templates []string
	for _, c := range cs {
		templates = append(templates, c.Template())
		if c.Count != 4 {
			t.Errorf("cluster %q has %d events, want 4", c.Template(), c.Count)
		}
		if len(c.Events) != 3 || c.Events[0].RecordID == "" || !slices.Equal(c.Hosts, []string{"web-1"}) {
			t.Errorf("cluster %q: events %+v hosts %v", c.Template(), c.Events, c.Hosts)
		}
	}
	slices.Sort(templates)
	want := []string{
		"CRON pam_unix(cron:session): session opened for user <*> by uid=<NUM>",
		"sshd Accepted publickey for <*> from <IP> port <NUM> ssh2: RSA SHA256:abc",
		"sshd Failed password for <*> from <IP> port <NUM> ssh2",
	}
	if !slices.Equal(templates, want) {
		t.Errorf("templates\n got %q\nwant %q", templates, want)
	}
	if s := m.Stats(); s.Events != 12 || s.Created != 3 || s.Live != 3 || s.Evicted != 0 {
		t.Errorf("stats %+v", s)
	}
	if c := m.Match(syslogEvent("x", "sshd", "Failed password for eve from 10.9.9.9 port 1 ssh2")); c == nil || c.Count != 4 {
		t.Errorf("Match = %+v", c)
	}
	if c := m.Match(syslogEvent("x", "sshd", "something else entirely")); c != nil {
		t.Errorf("Match of a new text = %q", c.Template())
	}
}

// countNodes walks the tree.
func countNodes(m *Miner) (nodes, clusters int) {
	var walk func(n *node)
	walk = func(n *node) {
		nodes++
		clusters += len(n.clusters)
		for _, c := range n.children {
			walk(c)
		}
	}
	for _, n := range m.byLen {
		walk(n)
	}
	return
}

// Distinct texts beyond MaxClusters evict; the tree never holds more than
// the clusters' paths; detected clusters are spared.
func TestBoundedMemory(t *testing.T) {
	m := NewMiner(Options{MaxClusters: 50})
	hot := m.Add(syslogEvent("hot", "sudo", "alice : TTY=pts/0 ; COMMAND=/bin/bash"))
	m.Detect(hot, detect.Detection{Rule: finding.Rule{ID: "sudo-shell", Title: "Sudo shell"}, Priority: finding.High,
		Tactic: "Privilege Escalation", Event: syslogEvent("hot", "sudo", "alice : TTY=pts/0 ; COMMAND=/bin/bash")})
	for i := range 20000 {
		w := fmt.Sprintf("w%c%c%c", 'a'+i%26, 'a'+i/26%26, 'a'+i/676%26)
		m.Add(syslogEvent(fmt.Sprint(i), "app"+w[1:3], w+" did "+strings.Repeat("x", i%7)+" thing "+w))
	}
	s := m.Stats()
	if s.Live != 50 || s.Evicted != s.Created-50 {
		t.Errorf("stats %+v", s)
	}
	nodes, clusters := countNodes(m)
	if clusters != 50 || nodes > 50*(1+m.opt.Depth) {
		t.Errorf("tree holds %d nodes and %d clusters for 50 live clusters", nodes, clusters)
	}
	if !slices.Contains(m.Clusters(), hot) || hot.Priority != finding.High || !hot.Events[0].Detected {
		t.Error("the detected cluster was evicted or lost its detection")
	}
	if m.Place("hot") != hot {
		t.Error("Place does not find the detected record's cluster")
	}
}

func TestDetectRepresentatives(t *testing.T) {
	m := NewMiner(Options{MaxRepresentatives: 2})
	var last *Cluster
	for i := range 5 {
		last = m.Add(syslogEvent(fmt.Sprint("e", i), "sshd", fmt.Sprintf("Failed password for u%d from 10.0.0.1 port 1 ssh2", i)))
	}
	ev := syslogEvent("e4", "sshd", "Failed password for u4 from 10.0.0.1 port 1 ssh2")
	d := detect.Detection{Rule: finding.Rule{ID: "r1"}, Priority: finding.Medium, Event: ev,
		Techniques: []finding.Technique{{ID: "T1110"}}}
	m.Detect(last, d)
	m.Detect(last, d)
	if len(last.Events) != 2 || last.Events[1].RecordID != "e4" || !last.Events[1].Detected || last.Events[0].RecordID != "e0" {
		t.Errorf("representatives %+v", last.Events)
	}
	if len(last.Detections) != 1 || last.Detections[0].Count != 2 || last.Detections[0].Techniques[0] != "T1110" {
		t.Errorf("detections %+v", last.Detections)
	}
	f := &finding.Finding{ID: "f1", Conclusion: "x"}
	m.AddFinding(last, f)
	f.Conclusion = "changed by the caller"
	if last.Findings[0].Conclusion != "x" {
		t.Error("AddFinding keeps the caller's finding instead of a copy")
	}
}

// corpus reads the repository's attack and benign corpora.
func corpus(tb testing.TB) []*event.Event {
	var evs []*event.Event
	for _, g := range []string{"attack/*", "benign/*"} {
		files, _ := filepath.Glob(filepath.Join("..", "..", "testdata", g))
		for _, p := range files {
			raw, err := os.ReadFile(p)
			if err != nil {
				tb.Fatal(err)
			}
			for ev, err := range source.Read(context.Background(), bytes.NewReader(raw), source.Options{Name: p}) {
				if err == nil {
					evs = append(evs, ev)
				}
			}
		}
	}
	if len(evs) == 0 {
		tb.Skip("no corpus under testdata/")
	}
	return evs
}

// The corpora compress into far fewer clusters than events, and every
// event lands in a cluster whose template matches its own tokens.
func TestCorpusClusters(t *testing.T) {
	evs := corpus(t)
	m := NewMiner(Options{})
	for _, ev := range evs {
		c := m.Add(ev)
		toks := m.eventTokens(nil, ev)
		if len(toks) != len(c.tokens) {
			t.Fatalf("event %s: %d tokens, cluster %d", ev.ID, len(toks), len(c.tokens))
		}
		for i, tk := range c.tokens {
			if tk != Param && tk != toks[i] {
				t.Fatalf("event %s token %d %q does not fit template %q", ev.ID, i, toks[i], c.Template())
			}
		}
	}
	s := m.Stats()
	t.Logf("%d events → %d clusters", s.Events, s.Live)
	if s.Live == 0 || s.Live*2 > int(s.Events) {
		t.Errorf("%d clusters for %d events", s.Live, s.Events)
	}
}

func BenchmarkMiner(b *testing.B) {
	evs := corpus(b)
	b.ReportAllocs()
	n := 0
	m := NewMiner(Options{})
	for b.Loop() {
		for _, ev := range evs {
			m.Add(ev)
		}
		n += len(evs)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(m.Stats().Live), "clusters")
}

func FuzzMiner(f *testing.F) {
	f.Add("Failed password for alice from 10.0.0.1 port 22 ssh2", "sshd", "Failed password for bob from ::1 port 1 ssh2")
	f.Add("pid=12 0xdeadbeef /a/b/c C:\\x\\y [fe80::1]:443", "", "\"quoted\" (x) a=b=c")
	f.Add("", "", "\xff\xfe =")
	f.Fuzz(func(t *testing.T, a, prog, b string) {
		m := NewMiner(Options{MaxClusters: 4, MaxTokens: 12})
		for i, text := range []string{a, b, a + " " + b, b + " " + a} {
			ev := &event.Event{ID: fmt.Sprint(i), Program: prog, Message: text}
			c := m.Add(ev)
			if c == nil || c.leaf == nil {
				t.Fatal("Add returned no live cluster")
			}
			toks := m.eventTokens(nil, ev)
			if len(toks) > 12+1 || len(toks) != len(c.tokens) {
				t.Fatalf("%d tokens, template %d", len(toks), len(c.tokens))
			}
			for _, tk := range toks {
				if len(tk) > maxTokenBytes+len("="+MaskPath) {
					t.Fatalf("token of %d bytes", len(tk))
				}
			}
			if m.Match(ev) != c {
				t.Fatal("Match disagrees with Add")
			}
		}
		if s := m.Stats(); s.Live > 4 {
			t.Fatalf("%d live clusters over the bound", s.Live)
		}
	})
}
