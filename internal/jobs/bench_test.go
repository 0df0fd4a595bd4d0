package jobs

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/loupe-sec/loupe/internal/pipeline"
	"github.com/loupe-sec/loupe/internal/source"
	"github.com/loupe-sec/loupe/internal/store"
)

const benchEvents = 200_000

// BenchmarkRecord: a job's whole path — read the generated file, parse,
// detect, reason, and commit findings, event volume and checkpoints to
// SQLite every 500 ms (the default) — against BenchmarkPipelineOnly, the
// same run with nowhere to write.
func BenchmarkRecord(b *testing.B) {
	dir := b.TempDir()
	path := filepath.Join(dir, "events.log")
	writeEvents(b, path, benchEvents, 2000)
	s := openStore(b, dir)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		inv, err := s.CreateInvestigation(ctx, store.Investigation{Source: fileSource(path)})
		if err != nil {
			b.Fatal(err)
		}
		events, _ := OpenFiles(ctx, inv.Source)
		for _, err := range Record(ctx, s, inv.ID, events, RecordOptions{}, nil) {
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(benchEvents)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkPipelineOnly(b *testing.B) {
	path := filepath.Join(b.TempDir(), "events.log")
	writeEvents(b, path, benchEvents, 2000)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for _, err := range pipeline.Run(ctx, source.ReadFiles(ctx, []string{path}, source.Options{}), pipeline.Options{}, nil) {
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(benchEvents)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
