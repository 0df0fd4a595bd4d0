package server

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/loupe-sec/loupe/internal/alert"
	"github.com/loupe-sec/loupe/internal/config"
)

const sibOutput = "17:20:42.123456789: Notice A shell was spawned in a container with an attached terminal (user=alice user_loginuid=-1 k8s.ns=prod k8s.pod=web-1 container=3ad7b26ded6d shell=bash parent=runc cmdline=bash -il terminal=34816 container_id=3ad7b26ded6d image=nginx connection=10.42.0.17:22)"

func postJSON(t *testing.T, u, body string, hdr http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header[k] = v
	}
	return do(t, req)
}

func get(t *testing.T, u string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func analyzeURL(base string, params map[string]string) string {
	q := url.Values{}
	for k, v := range params {
		q.Set(k, v)
	}
	return base + "/analyze?" + q.Encode()
}

func TestSIBAPIAnalyzeShape(t *testing.T) {
	ts := newTestServer(t, nil)
	body := `{"rule":"Terminal shell in container","output":` + jsonString(sibOutput) + `,"priority":"Notice"}`
	resp, b := postJSON(t, ts.URL+"/api/analyze", body, nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	// The documented keys, as raw JSON.
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"attack_vector", "mitre_attack", "risk_assessment", "mitigations", "false_positive", "meta"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("response lacks %q: %s", k, b)
		}
	}
	var nested map[string]map[string]any
	json.Unmarshal(b, &nested)
	for sect, keys := range map[string][]string{
		"mitre_attack":    {"tactic", "technique", "technique_name"},
		"risk_assessment": {"severity", "confidence", "impact"},
		"mitigations":     {"immediate", "short_term", "long_term"},
		"false_positive":  {"likelihood", "common_causes"},
		"meta":            {"provider", "cached", "dedup_count", "obfuscation", "related_events", "analyzed_at"},
	} {
		for _, k := range keys {
			if _, ok := nested[sect][k]; !ok {
				t.Errorf("%s lacks %q", sect, k)
			}
		}
	}
	var an alert.Analysis
	if err := json.Unmarshal(b, &an); err != nil {
		t.Fatal(err)
	}
	if err := an.Validate(); err != nil {
		t.Errorf("invalid analysis: %v", err)
	}
	for _, v := range []string{an.RiskAssessment.Severity, an.RiskAssessment.Confidence, an.FalsePositive.Likelihood} {
		if v != strings.ToLower(v) {
			t.Errorf("enum not lower case: %q", v)
		}
	}
	if an.MitreAttack.Technique != "T1059.004" || an.Meta.Provider != "offline" || an.Meta.Cached || an.Meta.DedupCount != 1 ||
		an.Meta.RelatedEvents == nil || !strings.Contains(an.AttackVector, "alice") {
		t.Errorf("analysis %+v", an)
	}
	if an.Meta.Obfuscation["user"] != 1 || an.Meta.Obfuscation["container"] != 1 {
		t.Errorf("obfuscation counts %v", an.Meta.Obfuscation)
	}

	// Same alert again, other time, pid-like numbers, address: served from the cache.
	again := strings.NewReplacer("17:20:42.123456789", "09:00:00.000000001", "34816", "99", "10.42.0.17", "10.9.9.9").Replace(sibOutput)
	_, b = postJSON(t, ts.URL+"/api/analyze", `{"alert":{"rule":"Terminal shell in container","output":`+jsonString(again)+`,"priority":"Notice"}}`, nil)
	var second alert.Analysis
	if err := json.Unmarshal(b, &second); err != nil {
		t.Fatal(err)
	}
	if !second.Meta.Cached || second.Meta.DedupCount != 2 {
		t.Errorf("second request: cached %v dedup_count %d", second.Meta.Cached, second.Meta.DedupCount)
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func TestSIBAPIAnalyzeErrors(t *testing.T) {
	ts := newTestServer(t, nil)
	for name, c := range map[string]struct {
		body string
		code int
	}{
		"bad json":     {`{"rule":`, http.StatusBadRequest},
		"no alert":     {`{"priority":"Warning"}`, http.StatusBadRequest},
		"wrong type":   {`{"rule":42}`, http.StatusBadRequest},
		"too large":    {`{"rule":"r","output":"` + strings.Repeat("a", maxAlertBytes) + `"}`, http.StatusRequestEntityTooLarge},
		"sib alert":    {`{"alert":"File below /etc opened (user=root)","rule":"Write below etc"}`, http.StatusOK},
		"output only":  {`{"output":"something"}`, http.StatusOK},
		"unknown rule": {`{"rule":"Custom","output":"x"}`, http.StatusOK},
	} {
		resp, b := postJSON(t, ts.URL+"/api/analyze", c.body, nil)
		if resp.StatusCode != c.code {
			t.Errorf("%s: status %d, want %d: %.200s", name, resp.StatusCode, c.code, b)
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Errorf("%s: not JSON: %.200s", name, b)
		}
		if c.code != http.StatusOK && m["error"] == "" {
			t.Errorf("%s: no error message: %s", name, b)
		}
	}
	resp, _ := get(t, ts.URL+"/api/analyze")
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /api/analyze: %d", resp.StatusCode)
	}
}

func TestSIBPage(t *testing.T) {
	ts := newTestServer(t, nil)
	resp, b := get(t, analyzeURL(ts.URL, map[string]string{"rule": "Terminal shell in container", "output": sibOutput, "priority": "Notice", "hostname": "node-1"}))
	page := string(b)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("status %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP %q", csp)
	}
	for _, want := range []string{`href="https://attack.mitre.org/techniques/T1059/004/"`, "sev-medium", "Immediate", "Short term", "Long term",
		"No related events", "kubectl exec", "alice", "node-1", "offline"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(page, "[USER-1]") {
		t.Error("page shows a token instead of the real value")
	}
	if regexp.MustCompile(`(?i)<script|https?://(?:cdn|fonts)`).MatchString(page) {
		t.Error("page loads scripts or remote assets")
	}

	// format=json gives the analysis.
	resp, b = get(t, analyzeURL(ts.URL, map[string]string{"rule": "Terminal shell in container", "output": sibOutput, "format": "json"}))
	var an alert.Analysis
	if err := json.Unmarshal(b, &an); err != nil || resp.StatusCode != 200 || an.Validate() != nil {
		t.Fatalf("format=json: %d %v %.200s", resp.StatusCode, err, b)
	}

	// Nothing to analyse.
	resp, b = get(t, ts.URL+"/analyze?rule=Unknown")
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "No alert given") {
		t.Errorf("empty alert: %d %.300s", resp.StatusCode, b)
	}
}

func TestSIBDryRun(t *testing.T) {
	ts := newTestServer(t, nil)
	out := "Sensitive file opened for reading (user=carol file=/etc/shadow connection=10.1.2.3:22 token=ghp_abcdefghijklmnopqrstuvwxyz0123456789)"
	params := map[string]string{"rule": "Read sensitive file untrusted", "output": out, "priority": "Warning", "hostname": "db-7.corp.example.com", "dry_run": "true"}
	resp, b := get(t, analyzeURL(ts.URL, params))
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	page := string(b)
	_, afterPrompt, ok := strings.Cut(page, "Prompt that would be sent")
	if !ok {
		t.Fatal("no prompt section")
	}
	prompt, table, ok := strings.Cut(afterPrompt, "Token table")
	if !ok {
		t.Fatal("no token table")
	}
	for _, raw := range []string{"carol", "10.1.2.3", "db-7.corp.example.com", "ghp_"} {
		if strings.Contains(prompt, raw) {
			t.Errorf("prompt shows %q", raw)
		}
	}
	for _, tok := range []string{"[USER-1]", "[INTERNAL-IP-1]", "[HOST-1]", "[REDACTED]", "/etc/shadow", "Read sensitive file untrusted"} {
		if !strings.Contains(prompt, tok) {
			t.Errorf("prompt lacks %q", tok)
		}
	}
	for _, real := range []string{"carol", "10.1.2.3", "db-7.corp.example.com", "(not kept)"} {
		if !strings.Contains(table, real) {
			t.Errorf("token table lacks %q", real)
		}
	}
	if strings.Contains(table, "ghp_") {
		t.Error("token table shows the secret")
	}

	params["format"] = "json"
	_, b = get(t, analyzeURL(ts.URL, params))
	var d struct {
		DryRun bool   `json:"dry_run"`
		Prompt string `json:"prompt"`
		Tokens []struct{ Token, Kind, Value string }
	}
	if err := json.Unmarshal(b, &d); err != nil || !d.DryRun || strings.Contains(d.Prompt, "carol") || len(d.Tokens) < 4 {
		t.Fatalf("dry run json: %v %.300s", err, b)
	}
}

func TestSIBPageEscapesEverything(t *testing.T) {
	ts := newTestServer(t, nil)
	hostile := map[string]string{
		"rule":     `<script>alert(1)</script>`,
		"output":   `"><img src=x onerror=alert(2)> (user=<b>root</b> cmdline=<svg/onload=alert(3)>)`,
		"priority": `"><script>alert(4)</script>`,
		"hostname": `javascript:alert(5)`,
		"tags":     `javascript:alert(6),T1059,<i>x</i>`,
	}
	for _, dry := range []string{"false", "true"} {
		hostile["dry_run"] = dry
		resp, b := get(t, analyzeURL(ts.URL, hostile))
		page := string(b)
		if resp.StatusCode != 200 {
			t.Fatalf("dry_run=%s: status %d", dry, resp.StatusCode)
		}
		for _, bad := range []string{"<script>", "<img", "<svg", "<b>root", "<i>x"} {
			if strings.Contains(strings.ToLower(page), bad) {
				t.Errorf("dry_run=%s: unescaped %q in page", dry, bad)
			}
		}
		for _, m := range regexp.MustCompile(`(?i)(?:href|src)\s*=\s*"([^"]*)"`).FindAllStringSubmatch(page, -1) {
			if !strings.HasPrefix(m[1], "https://attack.mitre.org/") {
				t.Errorf("dry_run=%s: unexpected link %q", dry, m[1])
			}
		}
		if !strings.Contains(page, "&lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Errorf("dry_run=%s: rule not shown escaped", dry)
		}
	}
}

func TestSIBTokenAuth(t *testing.T) {
	ts := newTestServer(t, func(c *config.Config) { c.Token = "s3cret" })
	page := analyzeURL(ts.URL, map[string]string{"rule": "Terminal shell in container", "output": "x"})
	cases := []struct {
		name string
		req  func() *http.Request
		code int
	}{
		{"page without token", func() *http.Request { r, _ := http.NewRequest("GET", page, nil); return r }, 401},
		{"page with query token", func() *http.Request { r, _ := http.NewRequest("GET", page+"&token=s3cret", nil); return r }, 200},
		{"page with wrong query token", func() *http.Request { r, _ := http.NewRequest("GET", page+"&token=s3cre", nil); return r }, 401},
		{"page with bearer", func() *http.Request {
			r, _ := http.NewRequest("GET", page, nil)
			r.Header.Set("Authorization", "Bearer s3cret")
			return r
		}, 200},
		{"api without token", func() *http.Request {
			r, _ := http.NewRequest("POST", ts.URL+"/api/analyze", strings.NewReader(`{"rule":"r"}`))
			return r
		}, 401},
		{"api with bearer", func() *http.Request {
			r, _ := http.NewRequest("POST", ts.URL+"/api/analyze", strings.NewReader(`{"rule":"r"}`))
			r.Header.Set("Authorization", "Bearer s3cret")
			return r
		}, 200},
		{"health all without token", func() *http.Request { r, _ := http.NewRequest("GET", ts.URL+"/api/health/all", nil); return r }, 401},
		{"health is open", func() *http.Request { r, _ := http.NewRequest("GET", ts.URL+"/health", nil); return r }, 200},
	}
	for _, c := range cases {
		resp, b := do(t, c.req())
		if resp.StatusCode != c.code {
			t.Errorf("%s: %d, want %d (%.100s)", c.name, resp.StatusCode, c.code, b)
		}
		if c.code == 401 && bytes.Contains(b, []byte("Terminal")) {
			t.Errorf("%s: content leaked", c.name)
		}
	}
}

func TestSIBHealth(t *testing.T) {
	ts := newTestServer(t, nil)
	_, b := get(t, ts.URL+"/health")
	var h map[string]string
	if err := json.Unmarshal(b, &h); err != nil || h["status"] != "healthy" || h["service"] != "loupe" {
		t.Fatalf("/health: %v %s", err, b)
	}
}

func TestSIBHealthAll(t *testing.T) {
	var paths = make(chan string, 10)
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths <- r.URL.Path
		io.WriteString(w, "ready")
	}))
	defer ok.Close()
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "nope", http.StatusServiceUnavailable)
	}))
	defer failing.Close()
	stalled := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}))
	defer stalled.Close()

	ts := newTestServer(t, func(c *config.Config) {
		c.LokiURL = ok.URL
		c.FalcosidekickURL = failing.URL
		c.GrafanaURL = stalled.URL
		c.LLMProvider = "ollama"
		c.LLMBaseURL = ok.URL
	})
	start := time.Now()
	_, b := get(t, ts.URL+"/api/health/all?timeout=0.3")
	elapsed := time.Since(start)
	var res struct {
		Status   string                   `json:"status"`
		Stack    string                   `json:"stack"`
		Services map[string]ServiceHealth `json:"services"`
	}
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if elapsed > 2*time.Second {
		t.Errorf("took %v: checks did not run concurrently or the timeout was ignored", elapsed)
	}
	want := map[string]string{"loki": "up", "llm": "up", "falcosidekick": "down", "grafana": "down", "falco": "not_configured", "loupe": "up"}
	for name, status := range want {
		if got := res.Services[name]; got.Status != status {
			t.Errorf("%s: %+v, want %s", name, got, status)
		}
	}
	if g := res.Services["grafana"]; !strings.Contains(g.Error, "timed out") || g.LatencyMS < 250 {
		t.Errorf("stalled grafana: %+v", g)
	}
	if l := res.Services["loki"]; l.URL != ok.URL+"/ready" || l.Code != 200 || l.LatencyMS > 250 {
		t.Errorf("loki: %+v", l)
	}
	if res.Status != "degraded" || res.Stack != "loki" {
		t.Errorf("overall %s stack %s", res.Status, res.Stack)
	}
	close(paths)
	var seen []string
	for p := range paths {
		seen = append(seen, p)
	}
	if s := strings.Join(seen, ","); !strings.Contains(s, "/ready") || !strings.Contains(s, "/api/tags") {
		t.Errorf("paths checked: %s", s)
	}

	// VictoriaLogs stack checks /health instead of Loki.
	vm := newTestServer(t, func(c *config.Config) { c.Stack = "vm"; c.VictoriaLogsURL = failing.URL })
	_, b = get(t, vm.URL+"/api/health/all")
	res.Services = nil
	json.Unmarshal(b, &res)
	if v := res.Services["victorialogs"]; v.URL != failing.URL+"/health" || v.Status != "down" || res.Status != "unhealthy" {
		t.Errorf("vm stack: %s", b)
	}
	if _, ok := res.Services["loki"]; ok {
		t.Error("loki checked on the vm stack")
	}
}
