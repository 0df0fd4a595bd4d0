package origin

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/loupe-sec/loupe/internal/source"
	"github.com/loupe-sec/loupe/internal/source/origin/lokitest"
	"github.com/loupe-sec/loupe/internal/source/origin/searchtest"
	"github.com/tidwall/gjson"
)

// Throughput of each origin against its server on loopback, reported as
// events/s (the servers share the machine with the reader).

const benchEvents = 20000

// drain reads a whole origin and returns its event count.
func drain(b *testing.B, s Spec) int {
	seq, err := Open(context.Background(), s)
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for _, err := range seq {
		if err != nil {
			b.Fatal(err)
		}
		n++
	}
	return n
}

func reportRate(b *testing.B, perOp int) {
	b.ReportMetric(float64(perOp)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// benchOrigin reads spec b.N times; every read must yield want events.
func benchOrigin(b *testing.B, spec Spec, want int) {
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if n := drain(b, spec); n != want {
			b.Fatalf("%d events, want %d", n, want)
		}
	}
	reportRate(b, want)
}

func BenchmarkLoki(b *testing.B) {
	alerts := loadFalco(b, repoFile("testdata", "attack", "falco.jsonl"))
	srv := lokitest.New()
	defer srv.Close()
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	for i := 0; i < benchEvents; i++ {
		a := alerts[i%len(alerts)]
		srv.Push(a.labels, lokitest.Entry{Time: base + int64(i)*int64(time.Millisecond), Line: string(a.line)})
	}
	spec := Spec{Kind: KindLoki, URL: srv.URL, Query: `{rule=~".+"}`, Start: time.Unix(0, base), End: time.Unix(0, base+int64(benchEvents)*int64(time.Millisecond)), PageSize: 1000}
	benchOrigin(b, spec, benchEvents)
}

func BenchmarkVictoriaLogs(b *testing.B) {
	base := vlogsURL(b)
	alerts := loadFalco(b, repoFile("testdata", "attack", "falco.jsonl"))
	run := runID()
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var lines [][]byte
	for i := 0; i < benchEvents; i++ {
		line := alerts[i%len(alerts)].line
		ts := t0.Add(time.Duration(i) * time.Millisecond).Format(time.RFC3339Nano)
		line = bytes.Replace(line, []byte(`"time":"`+gjson.GetBytes(line, "time").String()+`"`), []byte(`"time":"`+ts+`"`), 1)
		lines = append(lines, line)
	}
	vlogsInsert(b, base, run, lines, "output", "time", "hostname,rule,priority,source")
	spec := Spec{Kind: KindVictoriaLogs, URL: base, Query: "loupe_run:=" + strconv.Quote(run), Start: t0, End: t0.Add(time.Hour)}
	waitRows(b, spec, benchEvents)
	benchOrigin(b, spec, benchEvents)
}

func BenchmarkOpenSearch(b *testing.B) {
	lines := readLines(b, repoFile("testdata", "attack", "timesketch-nested.jsonl"))
	srv := searchtest.New()
	defer srv.Close()
	for i := 0; i < benchEvents; i++ {
		r := gjson.ParseBytes(lines[i%len(lines)])
		srv.Add("bench", fmt.Sprintf("%s-%d", r.Get("_id").String(), i), []byte(r.Get("_source").Raw))
	}
	for _, slices := range []int{1, 4} {
		b.Run(fmt.Sprintf("slices=%d", slices), func(b *testing.B) {
			benchOrigin(b, Spec{Kind: KindOpenSearch, URL: srv.URL, Index: "bench", TimeField: "datetime", Slices: slices, PageSize: 1000}, benchEvents)
		})
	}
}

// BenchmarkEVTX reads the binary Security.evtx of the velocidex module
// (739 records) from memory.
func BenchmarkEVTX(b *testing.B) {
	data, err := os.ReadFile(velocidexEVTX(b, "Security.evtx"))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		n = 0
		for _, err := range source.Read(context.Background(), bytes.NewReader(data), source.Options{Name: "bench"}) {
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
	}
	reportRate(b, n)
}
