package metrics

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/loupe-sec/loupe/internal/alert"
	"github.com/loupe-sec/loupe/internal/finding"
	"github.com/loupe-sec/loupe/internal/llm"
	"github.com/loupe-sec/loupe/internal/llm/llmtest"
	"github.com/loupe-sec/loupe/internal/pipeline"
)

// scrape fetches /metrics over HTTP and returns the exposition text.
func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("scrape: %d %v", resp.StatusCode, err)
	}
	return string(b)
}

// value returns the sample of the series named by its exact label text,
// e.g. `loupe_events_read_total{kind="stream"}`; -1 when absent.
func value(t *testing.T, text, series string) float64 {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`)
	m := re.FindStringSubmatch(text)
	if m == nil {
		return -1
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatalf("%s: %v", series, err)
	}
	return v
}

func TestRunsAreCountedLiveAndAfterTheyEnd(t *testing.T) {
	m := New()
	var a, b pipeline.Stats
	ra := m.Start(Stream, &a)
	rb := m.Start(Job, &b)
	a.Events.Add(1000)
	a.Errors.Add(2)
	b.Events.Add(50)
	time.Sleep(20 * time.Millisecond) // a non-zero age for the rate

	text := scrape(t, m)
	if v := value(t, text, `loupe_events_read_total{kind="stream"}`); v != 1000 {
		t.Errorf("live stream events = %v, want 1000", v)
	}
	if v := value(t, text, `loupe_bad_lines_total{kind="stream"}`); v != 2 {
		t.Errorf("live bad lines = %v, want 2", v)
	}
	if v := value(t, text, `loupe_runs_active{kind="stream"}`); v != 1 {
		t.Errorf("active streams = %v, want 1", v)
	}
	if v := value(t, text, `loupe_events_per_second{kind="stream"}`); v <= 0 || v > 1000/0.02 {
		t.Errorf("events/s = %v, want in (0, 50000]", v)
	}

	ra.Finding(&finding.Finding{Priority: finding.High, Source: "sigma"})
	ra.Finding(&finding.Finding{Priority: finding.High, Source: "sigma"})
	ra.Finding(&finding.Finding{Priority: finding.Low})
	a.Events.Add(500)
	ra.End(nil)
	ra.End(errors.New("second End is ignored"))
	rb.End(context.Canceled)
	// A second stream adds to the first one's total.
	var c pipeline.Stats
	rc := m.Start(Stream, &c)
	c.Events.Add(7)

	text = scrape(t, m)
	if v := value(t, text, `loupe_events_read_total{kind="stream"}`); v != 1507 {
		t.Errorf("stream events after end = %v, want 1507", v)
	}
	if v := value(t, text, `loupe_events_read_total{kind="job"}`); v != 50 {
		t.Errorf("job events = %v, want 50", v)
	}
	if v := value(t, text, `loupe_runs_active{kind="stream"}`); v != 1 {
		t.Errorf("active streams = %v, want 1", v)
	}
	if v := value(t, text, `loupe_runs_active{kind="job"}`); v != 0 {
		t.Errorf("active jobs = %v, want 0", v)
	}
	if v := value(t, text, `loupe_findings_total{priority="high",source="sigma"}`); v != 2 {
		t.Errorf("high sigma findings = %v, want 2", v)
	}
	if v := value(t, text, `loupe_findings_total{priority="low",source="rule"}`); v != 1 {
		t.Errorf("low rule findings = %v, want 1", v)
	}
	if v := value(t, text, `loupe_run_duration_seconds_count{kind="stream",outcome="ok"}`); v != 1 {
		t.Errorf("ok streams = %v, want 1", v)
	}
	if v := value(t, text, `loupe_run_duration_seconds_count{kind="job",outcome="cancelled"}`); v != 1 {
		t.Errorf("cancelled jobs = %v, want 1", v)
	}
	rc.End(nil)
}

func TestCacheHitsAndMisses(t *testing.T) {
	m := New()
	c := alert.NewCache(time.Hour, 10)
	if err := m.WatchCache("sib", c); err != nil {
		t.Fatal(err)
	}
	if err := m.WatchCache("sib", c); err == nil {
		t.Error("the same cache name registered twice")
	}
	c.Get("absent")
	c.Get("absent")
	text := scrape(t, m)
	if v := value(t, text, `loupe_cache_misses_total{cache="sib"}`); v != 2 {
		t.Errorf("misses = %v, want 2", v)
	}
	if v := value(t, text, `loupe_cache_hits_total{cache="sib"}`); v != 0 {
		t.Errorf("hits = %v, want 0", v)
	}
}

// The wrapper is exercised through the real Ollama client talking HTTP to a
// fake model server.
func TestProviderCallsTokensAndErrors(t *testing.T) {
	srv := llmtest.New(t, llm.Ollama, func(n int, c llmtest.Call) llmtest.Reply {
		if n == 1 {
			return llmtest.Reply{Status: 400, Raw: `{"error":"bad request"}`}
		}
		return llmtest.Reply{Text: `{"ok":true}`}
	})
	p, err := llm.New(llm.Ollama, "tiny", srv.BaseURL(), "", &http.Client{})
	if err != nil {
		t.Fatal(err)
	}
	m := New()
	p = m.Provider(p)
	req := llm.Request{User: "hi", Schema: map[string]any{"type": "object"}, SchemaName: "x"}
	resp, err := p.Generate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Generate(context.Background(), req); err == nil {
		t.Fatal("second call should fail with 400")
	}
	text := scrape(t, m)
	if v := value(t, text, `loupe_llm_calls_total{model="tiny",outcome="ok",provider="ollama"}`); v != 1 {
		t.Errorf("ok calls = %v, want 1", v)
	}
	if v := value(t, text, `loupe_llm_calls_total{model="tiny",outcome="error",provider="ollama"}`); v != 1 {
		t.Errorf("failed calls = %v, want 1", v)
	}
	if want := float64(resp.InputTokens); want > 0 {
		if v := value(t, text, `loupe_llm_tokens_total{direction="input",model="tiny",provider="ollama"}`); v != want {
			t.Errorf("input tokens = %v, want %v", v, want)
		}
	}
	if v := value(t, text, `loupe_llm_call_duration_seconds_count{model="tiny",provider="ollama"}`); v != 2 {
		t.Errorf("latency samples = %v, want 2", v)
	}
	if !strings.Contains(text, "go_goroutines") {
		t.Error("Go runtime metrics missing")
	}
}

func TestRequestRoutesAreBounded(t *testing.T) {
	m := New()
	m.Request("POST /analyze_logs", "POST", 200, time.Millisecond)
	m.Request("", "GET", 404, time.Millisecond)
	m.Request("", "GET", 404, time.Millisecond)
	m.Request("GET /x", "GET", 1000, time.Millisecond)
	m.Request("", "X-HOSTILE-1", 405, time.Millisecond)
	text := scrape(t, m)
	if v := value(t, text, `loupe_http_requests_total{code="404",method="GET",route="unmatched"}`); v != 2 {
		t.Errorf("unmatched 404s = %v, want 2", v)
	}
	if v := value(t, text, `loupe_http_requests_total{code="other",method="GET",route="GET /x"}`); v != 1 {
		t.Errorf("odd status = %v, want 1", v)
	}
	if v := value(t, text, `loupe_http_requests_total{code="405",method="other",route="unmatched"}`); v != 1 {
		t.Errorf("odd method = %v, want 1", v)
	}
}
