package pipeline

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/loupe-sec/loupe/internal/detect"
	"github.com/loupe-sec/loupe/internal/report"
	"github.com/loupe-sec/loupe/internal/source"
)

// benchInput is the attack and benign corpora concatenated: a realistic mix
// where most events are ordinary and a few are detections.
func benchInput(b *testing.B) (data []byte, lines int) {
	var buf bytes.Buffer
	for _, g := range []string{"attack/evtx.jsonl", "attack/auth.log", "attack/falco.jsonl", "benign/*"} {
		files, _ := filepath.Glob(filepath.Join("..", "..", "testdata", g))
		for _, p := range files {
			raw, err := os.ReadFile(p)
			if err != nil {
				b.Fatal(err)
			}
			buf.Write(raw)
			if len(raw) > 0 && raw[len(raw)-1] != '\n' {
				buf.WriteByte('\n')
			}
		}
	}
	return buf.Bytes(), bytes.Count(buf.Bytes(), []byte{'\n'})
}

// BenchmarkEndToEnd: read, parse, detect, reason and write the Timesketch
// agent lines, in one goroutine.
func BenchmarkEndToEnd(b *testing.B) {
	data, lines := benchInput(b)
	ctx := context.Background()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		w := report.NewAgentWriter(io.Discard, report.FormLines)
		for f, err := range Run(ctx, source.Read(ctx, bytes.NewReader(data), source.Options{Name: "bench"}), Options{}, nil) {
			if err == nil {
				w.WriteFinding(f)
			}
		}
		w.Close()
	}
	b.ReportMetric(float64(lines*b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkParseDetect: read, parse and run the built-in detections only
// (the figure the ≥ 300k events/s per core target is about).
func BenchmarkParseDetect(b *testing.B) {
	data, lines := benchInput(b)
	ctx := context.Background()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var hits int
	for b.Loop() {
		det := detect.New(detect.Options{})
		for ev, err := range source.Read(ctx, bytes.NewReader(data), source.Options{Name: "bench"}) {
			if err == nil {
				det.Observe(ev, func(detect.Detection) { hits++ })
			}
		}
	}
	b.ReportMetric(float64(lines*b.N)/b.Elapsed().Seconds(), "events/s")
}
