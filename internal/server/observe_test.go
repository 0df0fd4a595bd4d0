package server

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"testing"

	"github.com/loupe-sec/loupe/internal/config"
)

// jsonLines decodes the JSON log lines written to s.
func jsonLines(s *syncBuffer) []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader([]byte(s.String())))
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

func metricValue(t *testing.T, text, series string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("series %s not in /metrics", series)
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

func getWith(t *testing.T, url string, hdr http.Header) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// A stream over the attack corpus shows in /metrics (events, findings by
// priority, one ok stream, the route's requests) and in JSON access logs
// that carry the request id the client sent.
func TestMetricsAndRequestLogs(t *testing.T) {
	var logs syncBuffer
	cfg := config.Default()
	cfg.KeepaliveInterval = 3600e9
	s := New(cfg, slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()

	in := corpus(t, "evtx.jsonl")
	hdr := http.Header{"X-Request-Id": {"case-42"}}
	resp, err := upload(t, ts.URL+"/analyze_logs", hdr, writeLines(in))
	if err != nil {
		t.Fatal(err)
	}
	lines, _ := readAgentLines(t, resp.Body)
	resp.Body.Close()
	if got := resp.Header.Get("X-Request-Id"); got != "case-42" {
		t.Errorf("X-Request-Id echoed as %q", got)
	}
	if len(lines) == 0 {
		t.Fatal("no findings from the attack corpus")
	}

	mresp, text := getWith(t, ts.URL+"/metrics", nil)
	if mresp.StatusCode != 200 {
		t.Fatalf("/metrics: %s", mresp.Status)
	}
	if v := metricValue(t, text, `loupe_events_read_total{kind="stream"}`); v != float64(len(in)) {
		t.Errorf("events read = %v, want %d", v, len(in))
	}
	total := 0.0
	for _, p := range []string{"low", "medium", "high", "critical"} {
		re := regexp.MustCompile(`(?m)^loupe_findings_total\{priority="` + p + `",source="[a-z]+"\} (\S+)$`)
		for _, m := range re.FindAllStringSubmatch(text, -1) {
			v, _ := strconv.ParseFloat(m[1], 64)
			total += v
		}
	}
	if total == 0 {
		t.Errorf("no findings counted by priority:\n%s", text)
	}
	if v := metricValue(t, text, `loupe_run_duration_seconds_count{kind="stream",outcome="ok"}`); v != 1 {
		t.Errorf("ok streams = %v, want 1", v)
	}
	if v := metricValue(t, text, `loupe_http_requests_total{code="200",method="POST",route="POST /analyze_logs"}`); v != 1 {
		t.Errorf("analyze_logs requests = %v, want 1", v)
	}

	// The access log line of the stream carries the client's request id,
	// as does the stream's own summary line.
	var access, done bool
	for _, l := range jsonLines(&logs) {
		if l["request_id"] != "case-42" {
			continue
		}
		switch l["msg"] {
		case "request":
			access = l["route"] == "POST /analyze_logs" && l["status"] == float64(200)
		case "stream done":
			done = l["events"] == float64(len(in))
		}
	}
	if !access || !done {
		t.Errorf("request-id log lines missing (access %v, stream done %v)", access, done)
	}
	// A hostile request id is replaced, not logged.
	resp, _ = getWith(t, ts.URL+"/healthz", http.Header{"X-Request-Id": {"a b;<c>"}})
	if id := resp.Header.Get("X-Request-Id"); id == "" || id == "a b;<c>" {
		t.Errorf("bad request id kept: %q", id)
	}
}

func TestMetricsNeedTheToken(t *testing.T) {
	ts := newTestServer(t, func(c *config.Config) { c.Token = "s3cret-token" })
	if resp, _ := getWith(t, ts.URL+"/metrics", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("/metrics without token: %s", resp.Status)
	}
	resp, text := getWith(t, ts.URL+"/metrics", http.Header{"Authorization": {"Bearer s3cret-token"}})
	if resp.StatusCode != 200 || metricValue(t, text, `loupe_runs_active{kind="stream"}`) != 0 {
		t.Errorf("/metrics with token: %s", resp.Status)
	}
}
