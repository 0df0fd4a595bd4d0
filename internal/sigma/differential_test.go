package sigma

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	sigmago "github.com/bradleyjkemp/sigma-go"
	"github.com/bradleyjkemp/sigma-go/evaluator"
	"github.com/loupe-sec/loupe/internal/detect"
	"github.com/loupe-sec/loupe/internal/event"
	"github.com/loupe-sec/loupe/internal/source"
	"github.com/tidwall/gjson"
)

// flatWindows is the event as sigma-go sees it: a flat map of the event
// data fields plus the System fields Sigma rules name.
func flatWindows(ev *event.Event) map[string]interface{} {
	m := map[string]interface{}{
		"EventID": fmt.Sprint(ev.EventID), "Channel": ev.Channel, "Provider_Name": ev.Provider, "Computer": ev.Host,
	}
	gjson.GetBytes(ev.Raw, ev.DataPath).ForEach(func(k, v gjson.Result) bool {
		m[k.String()] = v.String()
		return true
	})
	return m
}

// syntheticEvents are Sysmon process creations built from the benchmark
// vocabulary, so the generated rules have something to match.
func syntheticEvents(t testing.TB, n int) []*event.Event {
	rnd := rand.New(rand.NewPCG(3, 4))
	pick := func(l []string) string { return l[rnd.IntN(len(l))] }
	var buf bytes.Buffer
	for i := range n {
		img := `C:\Windows\System32\` + pick(benchImages)
		cmd := pick(benchImages) + " " + pick(benchWords) + " " + pick(benchWords) + " x" + fmt.Sprint(i)
		if i%3 == 0 {
			cmd += " " + pick(benchWords)
		}
		data := map[string]string{"Image": img, "CommandLine": cmd, "OriginalFileName": strings.ToUpper(pick(benchImages)),
			"ParentImage": `C:\Program Files\` + pick(benchParents), "TargetObject": `HKLM\Software\Microsoft\Windows\CurrentVersion\Run\x`,
			"Details": pick(benchWords), "DestinationIp": fmt.Sprintf("%d.1.2.3", []int{10, 192, 8}[i%3]), "Initiated": "true"}
		rec := map[string]any{"Event": map[string]any{
			"System": map[string]any{"EventID": []int{1, 1, 1, 13, 3}[i%5], "Channel": "Microsoft-Windows-Sysmon/Operational",
				"Provider": map[string]any{"#attributes": map[string]string{"Name": "Microsoft-Windows-Sysmon"}}, "Computer": "ws1",
				"EventRecordID": i},
			"EventData": data}}
		b, _ := json.Marshal(rec)
		buf.Write(b)
		buf.WriteByte('\n')
	}
	var out []*event.Event
	for ev, err := range source.Read(context.Background(), &buf, source.Options{Name: "synthetic"}) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
	}
	return out
}

// ruleSources are single-document rules: the generated ones, the test
// rules, and the SigmaHQ snapshot when present.
func ruleSources(t *testing.T) map[string][]byte {
	src := map[string][]byte{}
	for i, doc := range strings.Split(string(genRules(600)), "---\n") {
		src[fmt.Sprintf("gen#%d", i)] = []byte(doc)
	}
	var dirs []string
	dirs = append(dirs, "testdata/rules")
	if d := sharedSigma(); dirExists(d) {
		dirs = append(dirs, d)
	}
	for _, d := range dirs {
		filepath.Walk(d, func(p string, fi os.FileInfo, err error) error {
			if err != nil || fi.IsDir() || !(strings.HasSuffix(p, ".yml") || strings.HasSuffix(p, ".yaml")) {
				return nil
			}
			b, err := os.ReadFile(p)
			if err == nil && !bytes.Contains(b, []byte("\n---")) {
				src[p] = b
			}
			return nil
		})
	}
	return src
}

func dirExists(d string) bool {
	fi, err := os.Stat(d)
	return err == nil && fi.IsDir()
}

// TestDifferentialSigmaGo compares, rule by rule and event by event, the
// detection logic of this engine with github.com/bradleyjkemp/sigma-go on
// the Windows events of the corpora, on the rules both support. Known
// differences of the reference are classified; any other fails the test.
func TestDifferentialSigmaGo(t *testing.T) {
	var evs []*event.Event
	for _, p := range []string{filepath.Join("..", "..", "testdata", "attack", "evtx.jsonl"), filepath.Join("..", "demo", "corpus", "evtx.jsonl")} {
		evs = append(evs, readEvents(t, p)...)
	}
	evs = append(evs, syntheticEvents(t, 800)...)
	if d := os.Getenv("LOUPE_SIGMA_REGRESSION"); dirExists(d) { // real attack events
		filepath.WalkDir(d, func(p string, de fs.DirEntry, err error) error {
			if err == nil && !de.IsDir() && strings.HasSuffix(p, ".json") {
				if got, err := regressionEvents(p); err == nil {
					evs = append(evs, got...)
				}
			}
			return nil
		})
	}
	var win []*event.Event
	for _, ev := range evs {
		if familyOf(ev) == famWindows {
			win = append(win, ev)
		}
	}
	srcs := ruleSources(t)
	names := make([]string, 0, len(srcs))
	for n := range srcs {
		names = append(names, n)
	}
	sort.Strings(names)

	flats := make([]map[string]interface{}, len(win))
	for i, ev := range win {
		flats[i] = flatWindows(ev)
	}
	ctx := context.Background()
	var compared, pairs, matches, skippedOurs, skippedRef int
	diffs := map[string][]string{}
	for _, name := range names {
		rs := Parse(name, srcs[name], Options{})
		if len(rs.Rules) != 1 || rs.Rules[0].Correlation != "" || !rs.Rules[0].filter.has(famWindows) {
			skippedOurs++
			continue
		}
		r := rs.Rules[0]
		ref, err := sigmago.ParseRule(srcs[name])
		if err != nil {
			skippedRef++
			continue
		}
		re := evaluator.ForRule(ref)
		x := rs.NewEngine()
		supported := true
		var ruleDiffs []string
		for i, ev := range win {
			res, err := re.Matches(ctx, flats[i])
			if err != nil {
				supported = false
				break
			}
			x.begin(ev)
			ours := x.eval(r, r.cond)
			pairs++
			if ours {
				matches++
			}
			if ours != res.Match {
				ruleDiffs = append(ruleDiffs, fmt.Sprintf("%s on %q: loupe %v, sigma-go %v", name, ev.Summary(), ours, res.Match))
			}
		}
		if !supported {
			skippedRef++
			continue
		}
		compared++
		if len(ruleDiffs) > 0 {
			why := explain(srcs[name])
			diffs[why] = append(diffs[why], ruleDiffs...)
		}
	}
	t.Logf("%d rules compared over %d Windows events (%d pairs, %d matches); %d rules skipped (not a single Windows detection), %d unsupported by sigma-go",
		compared, len(win), pairs, matches, skippedOurs, skippedRef)
	for why, d := range diffs {
		t.Logf("%d differences explained by %s, e.g. %s", len(d), why, d[0])
	}
	if d := diffs["unexplained"]; len(d) > 0 {
		t.Errorf("%d unexplained differences:\n%s", len(d), strings.Join(d[:min(len(d), 20)], "\n"))
	}
	if compared < 100 || matches == 0 {
		t.Errorf("too little compared: %d rules, %d matches", compared, matches)
	}
}

// explain names the known sigma-go v0.6.6 behaviour a rule depends on.
func explain(src []byte) string {
	s := string(src)
	switch {
	case strings.Contains(s, "|windash") || strings.Contains(s, "|base64offset") || strings.Contains(s, "|wide") || strings.Contains(s, "|utf16"):
		return "modifiers sigma-go ignores (windash, base64offset, utf16)"
	case strings.Contains(s, "of them") && strings.Contains(s, "\n    _"):
		return "them including _-prefixed searches in sigma-go"
	case strings.Contains(s, "*") || strings.Contains(s, "?"):
		return "wildcards in plain values (sigma-go compares them literally)"
	}
	return "unexplained"
}

// TestPrefilterSound: the indexed, prefiltered Observe emits exactly the
// rules a plain evaluation of every rule's logsource and condition finds.
func TestPrefilterSound(t *testing.T) {
	rs := Parse("gen.yml", genRules(2000), Options{})
	test := loadTestRules(t)
	evs := syntheticEvents(t, 800)
	for _, p := range []string{filepath.Join("..", "..", "testdata", "attack", "evtx.jsonl"), filepath.Join("..", "..", "testdata", "attack", "falco.jsonl"),
		filepath.Join("..", "..", "testdata", "attack", "auth.log"), filepath.Join("..", "..", "testdata", "attack", "timesketch-flat.jsonl")} {
		evs = append(evs, readEvents(t, p)...)
	}
	for _, set := range []*Ruleset{rs, test} {
		x := set.NewEngine()
		y := set.NewEngine()
		corr := map[string]bool{}
		for _, r := range set.Rules {
			corr[r.attr.ID] = r.Correlation != ""
		}
		total := 0
		for _, ev := range evs {
			var got []string
			x.Observe(ev, func(d detect.Detection) {
				if !corr[d.Rule.ID] {
					got = append(got, d.Rule.ID)
				}
			})
			var want []string
			for _, r := range set.Rules {
				if r.Correlation == "" && r.generate && y.Match(r, ev) {
					want = append(want, r.attr.ID)
				}
			}
			sort.Strings(got)
			sort.Strings(want)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("%s: Observe %v, plain evaluation %v", ev.Summary(), got, want)
			}
			total += len(got)
		}
		if total == 0 {
			t.Error("nothing matched")
		}
		t.Logf("%d rules, %d events, %d matches", len(set.Rules), len(evs), total)
	}
}

// BenchmarkReferenceSigmaGo runs the same rules through sigma-go and loupe
// on two event mixes: "attack" (the attack corpus and synthetic events that
// many rules match) and "benign" (ordinary Windows activity that matches
// almost nothing, like most of a real log), with rule sets of 600 and of
// 2000 generated rules (the size of SigmaHQ's Windows rules), less the
// rules sigma-go cannot run. sigma-go is given its events already
// flattened into maps, so its figure leaves out that cost; loupe's
// includes emitting a detection for every match.
func BenchmarkReferenceSigmaGo(b *testing.B) {
	windows := func(evs []*event.Event) []*event.Event {
		var win []*event.Event
		for _, ev := range evs {
			if familyOf(ev) == famWindows {
				win = append(win, ev)
			}
		}
		return win
	}
	mixes := []struct {
		name string
		win  []*event.Event
	}{
		{"attack", windows(append(readEvents(b, filepath.Join("..", "..", "testdata", "attack", "evtx.jsonl")), syntheticEvents(b, 300)...))},
		{"benign", windows(readEvents(b, filepath.Join("..", "..", "testdata", "benign", "evtx.jsonl")))},
	}
	ctx := context.Background()
	for _, size := range []int{600, 2000} {
		docs := strings.Split(string(genRules(size)), "---\n")
		for _, mix := range mixes {
			b.Run(fmt.Sprintf("%d/%s", size, mix.name), func(b *testing.B) { referenceSigmaGo(ctx, b, docs, mix.win) })
		}
	}
	// Real SigmaHQ Windows rules over real attack events (the regression
	// samples), when a copy of them is at hand.
	rules, samples := filepath.Join(sharedSigma(), "windows"), os.Getenv("LOUPE_SIGMA_REGRESSION")
	if !dirExists(rules) || !dirExists(samples) {
		b.Logf("no SigmaHQ rules at %s or regression samples (LOUPE_SIGMA_REGRESSION): sigmahq case skipped", rules)
		return
	}
	var docs []string
	var evs []*event.Event
	filepath.WalkDir(rules, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".yml") {
			if data, err := os.ReadFile(p); err == nil {
				docs = append(docs, string(data))
			}
		}
		return nil
	})
	filepath.WalkDir(samples, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".json") {
			if got, err := regressionEvents(p); err == nil {
				evs = append(evs, got...)
			}
		}
		return nil
	})
	b.Run("sigmahq/regression", func(b *testing.B) { referenceSigmaGo(ctx, b, docs, windows(evs)) })
}

// referenceSigmaGo times sigma-go and loupe on the rules of docs that
// sigma-go can run, over win.
func referenceSigmaGo(ctx context.Context, b *testing.B, all []string, win []*event.Event) {
	{
		flats := make([]map[string]interface{}, len(win))
		for i, ev := range win {
			flats[i] = flatWindows(ev)
		}
		var refs []*evaluator.RuleEvaluator
		var docs []string
		for _, doc := range all {
			r, err := sigmago.ParseRule([]byte(doc))
			if err != nil {
				continue
			}
			e := evaluator.ForRule(r)
			if _, err := e.Matches(ctx, flats[0]); err != nil {
				continue // a modifier sigma-go lacks
			}
			refs = append(refs, e)
			docs = append(docs, doc)
		}
		b.Run("sigma-go", func(b *testing.B) {
			start := time.Now()
			for i := 0; i < b.N; i++ {
				for _, e := range refs {
					e.Matches(ctx, flats[i%len(flats)])
				}
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
			b.ReportMetric(float64(len(refs)), "rules")
		})
		b.Run("loupe", func(b *testing.B) {
			rs := Parse("same.yml", []byte(strings.Join(docs, "\n---\n")), Options{})
			benchObserve(b, rs, win)
		})
	}
}
