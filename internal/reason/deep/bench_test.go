package deep_test

import (
	"bytes"
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

// replay is the repository's attack and benign corpora (the shared datasets
// when ../shared is present are used by bench/, not here) repeated until
// at least n lines, as a stream: line numbers differ on every pass, so
// events derived ids stay distinct.
func replay(tb testing.TB, n int) (func() io.Reader, int) {
	var buf bytes.Buffer
	for _, g := range []string{"attack/evtx.jsonl", "attack/auth.log", "attack/falco.jsonl", "benign/*"} {
		files, _ := filepath.Glob(filepath.Join("..", "..", "..", "testdata", g))
		for _, p := range files {
			raw, err := os.ReadFile(p)
			if err != nil {
				tb.Fatal(err)
			}
			buf.Write(raw)
			if len(raw) > 0 && raw[len(raw)-1] != '\n' {
				buf.WriteByte('\n')
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
// time of the LLM run over the offline one (target ≤ 2).
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
		off, _, _ := timedRun(b, stream(), pipeline.Options{})
		on, st, _ := timedRun(b, stream(), pipeline.Options{Deep: a})
		sum := st.LLM.Load()
		b.ReportMetric(float64(events)/off.Seconds(), "offline-events/s")
		b.ReportMetric(float64(events)/on.Seconds(), "llm-events/s")
		b.ReportMetric(float64(sum.Calls)*1e6/float64(sum.Events), "calls/1M")
		b.ReportMetric(float64(sum.Clusters), "clusters")
		b.ReportMetric(on.Seconds()/off.Seconds(), "wall-ratio")
		b.Logf("%d events: offline %s, with LLM %s (stage %s); %s", sum.Events, off.Round(time.Millisecond), on.Round(time.Millisecond), sum.Duration.Round(time.Millisecond), sum)
	}
}
