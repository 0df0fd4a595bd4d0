package deep_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/loupe-sec/loupe/internal/llm"
	"github.com/loupe-sec/loupe/internal/llm/llmtest"
	"github.com/loupe-sec/loupe/internal/pipeline"
	"github.com/loupe-sec/loupe/internal/reason/deep"
	"github.com/loupe-sec/loupe/internal/source"
)

// replay is the shared datasets (EVTX-ATTACK-SAMPLES and the Falco
// alerts, when ../shared or $LOUPE_SHARED holds them) or else the
// repository's attack and benign corpora, repeated until at least n lines,
// as a stream. Ids derived from line numbers differ on every pass.
func replay(tb testing.TB, n int) (func() io.Reader, int) {
	var buf bytes.Buffer
	add := func(p string) {
		f, err := os.Open(p)
		if err != nil {
			tb.Fatal(err)
		}
		defer f.Close()
		var r io.Reader = f
		if filepath.Ext(p) == ".gz" {
			gz, err := gzip.NewReader(f)
			if err != nil {
				tb.Fatal(err)
			}
			r = gz
		}
		before := buf.Len()
		if _, err := io.Copy(&buf, r); err != nil {
			tb.Fatal(err)
		}
		if buf.Len() > before && buf.Bytes()[buf.Len()-1] != '\n' {
			buf.WriteByte('\n')
		}
	}
	shared := os.Getenv("LOUPE_SHARED")
	if shared == "" {
		shared = filepath.Join("..", "..", "..", "..", "shared")
	}
	if m, _ := filepath.Glob(filepath.Join(shared, "data", "evtx-attack-samples.jsonl.gz")); len(m) > 0 {
		falco, _ := filepath.Glob(filepath.Join(shared, "data", "falco", "*.jsonl"))
		for _, p := range append(m, falco...) {
			add(p)
		}
		tb.Logf("replaying the shared datasets under %s", shared)
	} else {
		tb.Logf("%s/data not present: replaying the repository's corpora", shared)
		for _, g := range []string{"attack/evtx.jsonl", "attack/auth.log", "attack/falco.jsonl", "benign/*"} {
			files, _ := filepath.Glob(filepath.Join("..", "..", "..", "testdata", g))
			for _, p := range files {
				add(p)
			}
		}
	}
	data := buf.Bytes()
	lines := bytes.Count(data, []byte{'\n'})
	if lines == 0 {
		tb.Skip("no corpus under testdata/")
	}
	passes := (n + lines - 1) / lines
	return func() io.Reader {
		rs := make([]io.Reader, passes)
		for i := range rs {
			rs[i] = bytes.NewReader(data)
		}
		return io.MultiReader(rs...)
	}, passes * lines
}

func timedRun(tb testing.TB, r io.Reader, opt pipeline.Options) (time.Duration, *pipeline.Stats, int) {
	ctx := context.Background()
	st := new(pipeline.Stats)
	start := time.Now()
	n := 0
	for _, err := range pipeline.Run(ctx, source.Read(ctx, r, source.Options{Name: "replay"}), opt, st) {
		if err != nil {
			tb.Fatal(err)
		}
		n++
	}
	return time.Since(start), st, n
}

// BenchmarkLLMStage1M replays the corpora to 1M events twice: offline, and
// with the LLM stage against a provider that takes 1 s per answer. It
// reports model calls per 1M events (target ≤ 100), clusters, and the wall
// time of the LLM run over the offline one (target ≤ 2), each the fastest
// of three interleaved runs.
//
//	go test -run XXX -bench LLMStage1M -benchtime 1x ./internal/reason/deep
func BenchmarkLLMStage1M(b *testing.B) {
	stream, events := replay(b, 1_000_000)
	s := llmtest.New(b, llm.OpenAI, func(_ int, c llmtest.Call) llmtest.Reply {
		time.Sleep(time.Second)
		return llmtest.Reply{Text: goodAnswer(b, c.Body)}
	})
	p, err := llm.New(llm.OpenAI, "bench", s.BaseURL(), "k", nil)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		a, err := deep.New(deep.Config{Provider: p})
		if err != nil {
			b.Fatal(err)
		}
		// The machine may be shared: interleave three runs of each and
		// keep the fastest of each.
		var off, on time.Duration
		var st *pipeline.Stats
		for range 3 {
			d, _, _ := timedRun(b, stream(), pipeline.Options{})
			if off == 0 || d < off {
				off = d
			}
			d, s, _ := timedRun(b, stream(), pipeline.Options{Deep: a})
			if on == 0 || d < on {
				on, st = d, s
			}
		}
		sum := st.LLM.Load()
		b.ReportMetric(float64(events)/off.Seconds(), "offline-events/s")
		b.ReportMetric(float64(events)/on.Seconds(), "llm-events/s")
		b.ReportMetric(float64(sum.Calls)*1e6/float64(sum.Events), "calls/1M")
		b.ReportMetric(float64(sum.Clusters), "clusters")
		b.ReportMetric(on.Seconds()/off.Seconds(), "wall-ratio")
		b.ReportMetric(sum.Duration.Seconds(), "llm-stage-s")
		b.Logf("%d events: offline %s, with LLM %s (stage %s); %s", sum.Events, off.Round(time.Millisecond), on.Round(time.Millisecond), sum.Duration.Round(time.Millisecond), sum)
	}
}
