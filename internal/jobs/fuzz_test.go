package jobs

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/loupe-sec/loupe/internal/pipeline"
	"github.com/loupe-sec/loupe/internal/store"
)

// FuzzParseInput feeds arbitrary bytes to the parsers of what API clients
// send: investigation options, file source parameters and remote source
// specs. None may panic; whatever they accept must be within the limits
// and must survive a JSON round trip unchanged.
func FuzzParseInput(f *testing.F) {
	for _, s := range []string{
		`{}`, `null`, ``, `{"max_evidence":5,"fail_window":"5m","origin":"cli"}`, `{"max_tracked":1e12}`,
		`{"path":"/var/log/auth.log"}`, `{"paths":["a","b"],"max_line_bytes":10}`, `{"upload":true,"names":["x"]}`,
		`{"url":"http://loki:3100","query":"{job=\"x\"}","start":"2024-01-01T00:00:00Z"}`, `[1,2]`, `{"fail_window":"-1s"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if o, err := ParseOptions(b); err == nil {
			if o.MaxEvidence < 0 || o.MaxEvidence > maxEvidenceLimit || o.MaxGroups < 0 || o.MaxGroups > maxGroupsLimit ||
				o.MaxTracked < 0 || o.MaxTracked > maxTrackedLimit {
				t.Fatalf("accepted out-of-range options %+v", o)
			}
			again, _ := json.Marshal(o)
			if o2, err := ParseOptions(again); err != nil || o2 != o {
				t.Fatalf("options %+v do not round-trip: %+v, %v", o, o2, err)
			}
			o.apply(pipeline.Options{})
		}
		if p, err := ParseFileParams(b); err == nil {
			if len(p.All()) == 0 {
				t.Fatal("accepted a file source without paths")
			}
			again, _ := json.Marshal(p)
			if _, err := ParseFileParams(again); err != nil {
				t.Fatalf("file params %+v do not round-trip: %v", p, err)
			}
		}
		for _, kind := range []string{"loki", "victorialogs", "opensearch"} {
			src := store.Source{Kind: kind, Params: b}
			if s, err := Spec(src); err == nil && s.Kind != kind {
				t.Fatalf("spec of kind %s came back as %s", kind, s.Kind)
			}
			withRange(src, timeA, timeB)
		}
	})
}

var (
	timeA = time.Date(2024, 3, 19, 0, 0, 0, 0, time.UTC)
	timeB = time.Date(2024, 3, 20, 0, 0, 0, 0, time.UTC)
)
