package alert

import (
	"context"
	"testing"
)

func BenchmarkOfflineAnalyze(b *testing.B) {
	a := Alert{Rule: "Terminal shell in container", Priority: "Notice", Output: shellOutput}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if _, err := (Offline{}).Analyze(context.Background(), a, Context{}); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkServiceCached(b *testing.B) {
	s := &Service{Cache: NewCache(0, 0), Obfuscate: true}
	a := Alert{Rule: "Terminal shell in container", Priority: "Notice", Output: shellOutput}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if _, err := s.Analyze(context.Background(), a); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkServiceUncached(b *testing.B) {
	s := &Service{Obfuscate: true}
	a := Alert{Rule: "Terminal shell in container", Priority: "Notice", Output: shellOutput}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if _, err := s.Analyze(context.Background(), a); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}
