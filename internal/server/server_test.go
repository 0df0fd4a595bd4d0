package server

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loupe-sec/loupe/internal/config"
)

// agentLine is what Timesketch decodes from each response line.
type agentLine struct {
	RecordID    string `json:"record_id"`
	Index       string `json:"_index"`
	TSIndex     string `json:"__ts_index_name"`
	Error       string `json:"error"`
	Annotations []struct {
		Question    string   `json:"investigative_question"`
		Conclusions []string `json:"conclusions"`
		Priority    string   `json:"priority"`
		AttackStage string   `json:"attack_stage"`
	} `json:"annotations"`
}

type testServer struct {
	*httptest.Server
	srv   *Server
	ended chan StreamStats
}

func newTestServer(t testing.TB, tweak func(*config.Config)) *testServer {
	t.Helper()
	cfg := config.Default()
	cfg.KeepaliveInterval = time.Hour // tests that want keepalives set it
	if tweak != nil {
		tweak(&cfg)
	}
	s := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ended := make(chan StreamStats, 128)
	s.streamEnded = func(st StreamStats) { ended <- st }
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	return &testServer{Server: hs, srv: s, ended: ended}
}

// corpus returns the lines of a testdata/attack file.
func corpus(t testing.TB, name string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "attack", name))
	if err != nil {
		t.Fatal(err)
	}
	var lines [][]byte
	for l := range bytes.Lines(b) {
		if l = bytes.TrimRight(l, "\r\n"); len(l) > 0 {
			lines = append(lines, l)
		}
	}
	return lines
}

// recordIndex maps each input record's _id to its _index.
func recordIndex(t testing.TB, lines [][]byte) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, l := range lines {
		var r struct {
			ID    string `json:"_id"`
			Index string `json:"_index"`
		}
		// The flat corpus carries a bare NaN, which encoding/json rejects.
		if err := json.Unmarshal(bytes.ReplaceAll(l, []byte(":NaN"), []byte(":null")), &r); err != nil {
			t.Fatalf("corpus line %s: %v", l, err)
		}
		m[r.ID] = r.Index
	}
	return m
}

// idOf returns the _id of the first corpus line containing marker.
func idOf(t testing.TB, lines [][]byte, marker string) string {
	t.Helper()
	for _, l := range lines {
		if bytes.Contains(l, []byte(marker)) {
			return recordIndexKey(t, l)
		}
	}
	t.Fatalf("no corpus line contains %s", marker)
	return ""
}

func recordIndexKey(t testing.TB, l []byte) string {
	for id := range recordIndex(t, [][]byte{l}) {
		return id
	}
	return ""
}

// upload streams lines into a chunked POST (no Content-Length) through an
// io.Pipe, like Python requests with a generator body.
func upload(t testing.TB, url string, hdr http.Header, produce func(w io.Writer) error) (*http.Response, error) {
	t.Helper()
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(produce(pw)) }()
	req, err := http.NewRequest(http.MethodPost, url, pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Header.Set("Accept", "application/x-ndjson")
	for k, v := range hdr {
		req.Header[k] = v
	}
	return http.DefaultClient.Do(req)
}

func writeLines(lines [][]byte) func(io.Writer) error {
	return func(w io.Writer) error {
		for _, l := range lines {
			if _, err := w.Write(append(l, '\n')); err != nil {
				return err
			}
		}
		return nil
	}
}

// readAgentLines reads a response body the way Timesketch does: line by
// line, skipping empty lines. It also returns the number of empty lines.
func readAgentLines(t testing.TB, r io.Reader) (lines []agentLine, blanks int) {
	t.Helper()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			blanks++
			continue
		}
		var l agentLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("response line %q: %v", sc.Text(), err)
		}
		lines = append(lines, l)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read response: %v", err)
	}
	return lines, blanks
}

func analyze(t testing.TB, ts *testServer, lines [][]byte) []agentLine {
	t.Helper()
	resp, err := upload(t, ts.URL+"/analyze_logs", nil, writeLines(lines))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %s", resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Fatalf("Content-Type %q", ct)
	}
	out, _ := readAgentLines(t, resp.Body)
	return out
}

func TestChunkedUploadFlatAndNested(t *testing.T) {
	ts := newTestServer(t, nil)
	extra := [][]byte{
		// Escaped and raw non-ASCII text must not trip the reader.
		[]byte(`{"_id":"u1","_index":"i","message":"caf\u00e9 \ud83d\udd12 \u0000 ok","datetime":"2024-03-19T23:00:00Z"}`),
		[]byte(`{"_id":"u2","_index":"i","message":"Grüße, 東京 — ✓","datetime":"2024-03-19T23:00:01Z"}`),
	}
	for _, name := range []string{"timesketch-flat.jsonl", "timesketch-nested.jsonl"} {
		t.Run(name, func(t *testing.T) {
			in := corpus(t, name)
			if name == "timesketch-flat.jsonl" && !bytes.Contains(bytes.Join(in, nil), []byte(":NaN")) {
				t.Fatal("flat corpus lost its NaN value; the test relies on it")
			}
			in = append(extra, in...)
			ids := recordIndex(t, in)
			out := analyze(t, ts, in)
			flagged := map[string]bool{}
			for _, l := range out {
				if l.Error != "" {
					t.Errorf("unexpected error line %q", l.Error)
					continue
				}
				if _, ok := ids[l.RecordID]; !ok {
					t.Errorf("record_id %q is not an input _id", l.RecordID)
				}
				if len(l.Annotations) == 0 || l.Annotations[0].Question == "" || len(l.Annotations[0].Conclusions) == 0 {
					t.Errorf("line for %s lacks a question or conclusion: %+v", l.RecordID, l)
				}
				switch p := l.Annotations[0].Priority; p {
				case "low", "medium", "high":
				default:
					t.Errorf("priority %q is not a Timesketch priority", p)
				}
				flagged[l.RecordID] = true
			}
			// The account creation (4720) and the service install (7045)
			// of the intrusion must be pointed at.
			for _, marker := range []string{`"event_identifier":4720`, `"event_identifier":7045`} {
				if id := idOf(t, in, marker); !flagged[id] {
					t.Errorf("record %s (%s) not flagged; flagged: %v", id, marker, flagged)
				}
			}
			st := <-ts.ended
			if st.Events != int64(len(in)) || st.BadLines != 0 || st.Err != nil {
				t.Errorf("stream stats %+v, want %d events, no bad lines", st, len(in))
			}
		})
	}
}

func TestFullDuplexSlowProducer(t *testing.T) {
	ts := newTestServer(t, nil)
	in := corpus(t, "timesketch-nested.jsonl")
	var closed atomic.Bool
	gotFinding := make(chan struct{})
	resp, err := upload(t, ts.URL+"/analyze_logs", nil, func(w io.Writer) error {
		defer closed.Store(true)
		for _, l := range in {
			if _, err := w.Write(append(l, '\n')); err != nil {
				return err
			}
			time.Sleep(5 * time.Millisecond)
		}
		// Keep the upload open until a finding came back (or give up).
		select {
		case <-gotFinding:
			time.Sleep(50 * time.Millisecond)
		case <-time.After(5 * time.Second):
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	first := true
	for sc.Scan() {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var l agentLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatal(err)
		}
		if l.RecordID != "" && first {
			first = false
			if closed.Load() {
				t.Fatal("first finding arrived only after the upload was closed: not full duplex")
			}
			close(gotFinding)
		}
	}
	if first {
		t.Fatal("no finding at all")
	}
}

func TestKeepalive(t *testing.T) {
	const interval = 50 * time.Millisecond
	ts := newTestServer(t, func(c *config.Config) { c.KeepaliveInterval = interval })
	in := corpus(t, "timesketch-nested.jsonl")
	resp, err := upload(t, ts.URL+"/analyze_logs", nil, func(w io.Writer) error {
		if err := writeLines(in[:1])(w); err != nil {
			return err
		}
		time.Sleep(6 * interval) // quiet stretch
		return writeLines(in[1:])(w)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines, blanks := readAgentLines(t, resp.Body)
	if blanks < 2 {
		t.Errorf("%d blank keepalive lines during a quiet stretch of 6 intervals, want >= 2", blanks)
	}
	if len(lines) == 0 {
		t.Error("no findings after the quiet stretch")
	}
	// A busy stream without pauses needs no keepalives... but the time
	// check must hold: blanks are bounded by elapsed intervals.
	if blanks > 20 {
		t.Errorf("%d blank lines: keepalive fires too often", blanks)
	}
}

func TestBadLines(t *testing.T) {
	ts := newTestServer(t, func(c *config.Config) { c.MaxLineBytes = 16 << 10 })
	in := corpus(t, "timesketch-nested.jsonl")
	huge := []byte(`{"_id":"big","message":"` + strings.Repeat("a", 20000) + `"}`)
	body := [][]byte{
		in[0],
		[]byte(`{"_id":"broken","_source":{"message":`), // line 2: malformed JSON
		huge, // line 3: oversized
		in[1],
		[]byte(`{"_id": [1, 2`), // line 5: malformed
	}
	body = append(body, in[2:]...)
	out := analyze(t, ts, body)
	var errs []string
	findingsAfterErrors := 0
	for _, l := range out {
		if l.Error != "" {
			errs = append(errs, l.Error)
		} else if len(errs) == 3 {
			findingsAfterErrors++
		}
	}
	want := []string{"line 2: ", "line 3: ", "line 5: "}
	if len(errs) != len(want) {
		t.Fatalf("error lines %q, want %d of them", errs, len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(errs[i], w) {
			t.Errorf("error line %q, want prefix %q", errs[i], w)
		}
	}
	if findingsAfterErrors == 0 {
		t.Error("no findings after the bad lines: the stream did not go on")
	}
	st := <-ts.ended
	if st.BadLines != 3 || st.Events != int64(len(body)-3) {
		t.Errorf("stats %+v, want 3 bad lines and %d events", st, len(body)-3)
	}
}

func TestClientDisconnectStopsPipeline(t *testing.T) {
	ts := newTestServer(t, nil)
	in := corpus(t, "timesketch-nested.jsonl")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	defer pw.Close()
	go func() {
		writeLines(in)(pw)
		// then stay open and silent, like a stalled producer
	}()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, ts.URL+"/analyze_logs", pr)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	// Wait for the first finding so the stream is surely mid-way.
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() && len(sc.Bytes()) == 0 {
	}
	cancel()
	resp.Body.Close()
	select {
	case st := <-ts.ended:
		if st.Err == nil {
			t.Errorf("stream after disconnect reports no error: %+v", st)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("pipeline still running 2s after the client went away")
	}
}

// Many streams at once: each gets findings about its own records only.
func TestConcurrentStreamsNoCrossTalk(t *testing.T) {
	ts := newTestServer(t, nil)
	in := corpus(t, "timesketch-nested.jsonl")
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		prefix := fmt.Sprintf("s%02d-", i)
		mine := make([][]byte, len(in))
		for j, l := range in {
			mine[j] = bytes.Replace(l, []byte(`"_id":"`), []byte(`"_id":"`+prefix), 1)
		}
		wg.Go(func() {
			resp, err := upload(t, ts.URL+"/analyze_logs", nil, func(w io.Writer) error {
				for j, l := range mine {
					if _, err := w.Write(append(l, '\n')); err != nil {
						return err
					}
					if j%10 == 0 {
						time.Sleep(time.Millisecond) // interleave the streams
					}
				}
				return nil
			})
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			sc := bufio.NewScanner(resp.Body)
			sc.Buffer(nil, 1<<20)
			count := 0
			for sc.Scan() {
				if len(sc.Bytes()) == 0 {
					continue
				}
				var l agentLine
				if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
					errs <- err
					return
				}
				if l.Error != "" {
					errs <- fmt.Errorf("stream %s got error line %q", prefix, l.Error)
					return
				}
				if !strings.HasPrefix(l.RecordID, prefix) {
					errs <- fmt.Errorf("stream %s got record_id %q", prefix, l.RecordID)
					return
				}
				count++
			}
			if count == 0 {
				errs <- fmt.Errorf("stream %s got no findings", prefix)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestIndexEchoed(t *testing.T) {
	ts := newTestServer(t, nil)
	for _, name := range []string{"timesketch-flat.jsonl", "timesketch-nested.jsonl"} {
		t.Run(name, func(t *testing.T) {
			in := corpus(t, name)
			// Give every record its own index so a mix-up shows.
			for i, l := range in {
				idx := fmt.Sprintf("idx%03d", i)
				l = replaceValue(l, `"_index":"`, idx)
				in[i] = replaceValue(l, `"__ts_index_name":"`, idx)
			}
			want := recordIndex(t, in)
			out := analyze(t, ts, in)
			if len(out) == 0 {
				t.Fatal("no findings")
			}
			for _, l := range out {
				if l.Index != want[l.RecordID] || l.TSIndex != want[l.RecordID] {
					t.Errorf("record %s: _index %q, __ts_index_name %q, want %q", l.RecordID, l.Index, l.TSIndex, want[l.RecordID])
				}
			}
		})
	}
}

// replaceValue replaces the string value after key in a JSON line.
func replaceValue(l []byte, key, value string) []byte {
	i := bytes.Index(l, []byte(key))
	if i < 0 {
		return l
	}
	start := i + len(key)
	end := bytes.IndexByte(l[start:], '"')
	return append(append(append([]byte{}, l[:start]...), value...), l[start+end:]...)
}

func TestSummariesForm(t *testing.T) {
	ts := newTestServer(t, func(c *config.Config) { c.KeepaliveInterval = 20 * time.Millisecond })
	in := corpus(t, "timesketch-nested.jsonl")
	ids := recordIndex(t, in)
	for _, how := range []struct {
		name, query string
		hdr         http.Header
	}{
		{"query", "?format=summaries", nil},
		{"header", "", http.Header{"X-Loupe-Format": {"summaries"}}},
	} {
		t.Run(how.name, func(t *testing.T) {
			resp, err := upload(t, ts.URL+"/analyze_logs"+how.query, how.hdr, func(w io.Writer) error {
				time.Sleep(60 * time.Millisecond) // let keepalives in before the first summary
				return writeLines(in)(w)
			})
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var got struct {
				Summaries []struct {
					LogRecords []struct {
						RecordID string `json:"record_id"`
					} `json:"log_records"`
					Annotations []json.RawMessage `json:"annotations"`
				} `json:"summaries"`
			}
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("summaries body is not one JSON object: %v\n%s", err, body)
			}
			if len(got.Summaries) == 0 {
				t.Fatalf("no summaries in %s", body)
			}
			for _, s := range got.Summaries {
				if len(s.LogRecords) == 0 || len(s.Annotations) == 0 {
					t.Errorf("summary without records or annotations: %+v", s)
				}
				for _, r := range s.LogRecords {
					if _, ok := ids[r.RecordID]; !ok {
						t.Errorf("unknown record_id %q", r.RecordID)
					}
				}
			}
		})
	}
	resp, err := http.Post(ts.URL+"/analyze_logs?format=xml", "application/x-ndjson", strings.NewReader("{}\n"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("unknown format: status %d, want 400", resp.StatusCode)
	}
}

func TestTokenAuth(t *testing.T) {
	in := corpus(t, "timesketch-nested.jsonl")[:3]
	post := func(ts *testServer, auth string) int {
		req, _ := http.NewRequest(http.MethodPost, ts.URL+"/analyze_logs", bytes.NewReader(bytes.Join(in, []byte("\n"))))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	open := newTestServer(t, nil)
	if got := post(open, ""); got != http.StatusOK {
		t.Errorf("no token configured, no header: %d, want 200", got)
	}
	locked := newTestServer(t, func(c *config.Config) { c.Token = "s3cret" })
	for _, tc := range []struct {
		auth string
		want int
	}{
		{"", http.StatusUnauthorized},
		{"Bearer wrong", http.StatusUnauthorized},
		{"Bearer s3cre", http.StatusUnauthorized},
		{"Basic s3cret", http.StatusUnauthorized},
		{"Bearer s3cret", http.StatusOK},
	} {
		if got := post(locked, tc.auth); got != tc.want {
			t.Errorf("Authorization %q: %d, want %d", tc.auth, got, tc.want)
		}
	}
}

func TestTooManyStreams(t *testing.T) {
	ts := newTestServer(t, func(c *config.Config) { c.MaxStreams = 1 })
	pr, pw := io.Pipe()
	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/analyze_logs", pr)
	resp1, err := http.DefaultClient.Do(req) // returns once headers are sent
	if err != nil {
		t.Fatal(err)
	}
	resp2, err := http.Post(ts.URL+"/analyze_logs", "application/x-ndjson", strings.NewReader("{}\n"))
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("second stream: %d, want 503", resp2.StatusCode)
	}
	pw.Close()
	io.Copy(io.Discard, resp1.Body)
	resp1.Body.Close()
	<-ts.ended
	resp3, err := http.Post(ts.URL+"/analyze_logs", "application/x-ndjson", strings.NewReader("{}\n"))
	if err != nil {
		t.Fatal(err)
	}
	resp3.Body.Close()
	if resp3.StatusCode != http.StatusOK {
		t.Errorf("after the first stream ended: %d, want 200", resp3.StatusCode)
	}
}

func TestGzipBody(t *testing.T) {
	ts := newTestServer(t, nil)
	in := corpus(t, "timesketch-nested.jsonl")
	hdr := http.Header{"Content-Encoding": {"gzip"}}
	resp, err := upload(t, ts.URL+"/analyze_logs", hdr, func(w io.Writer) error {
		zw := gzip.NewWriter(w)
		if err := writeLines(in)(zw); err != nil {
			return err
		}
		return zw.Close()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := readAgentLines(t, resp.Body)
	if len(out) == 0 || out[0].RecordID == "" {
		t.Fatalf("gzip upload gave %+v", out)
	}
	// An encoding loupe does not speak is refused.
	resp, err = upload(t, ts.URL+"/analyze_logs", http.Header{"Content-Encoding": {"br"}}, writeLines(in[:2]))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("Content-Encoding br: %d, want 415", resp.StatusCode)
	}
}

func TestHealthzIndexAndMethods(t *testing.T) {
	ts := newTestServer(t, nil)
	resp, err := http.Get(ts.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	var h struct{ Status, Version string }
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil || h.Status != "ok" || h.Version == "" {
		t.Errorf("healthz: %+v, %v", h, err)
	}
	resp.Body.Close()

	resp, err = http.Get(ts.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "/analyze_logs") || !strings.Contains(string(body), "/healthz") ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Errorf("index: %s %s", resp.Header.Get("Content-Type"), body)
	}

	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, "/analyze_logs", http.StatusMethodNotAllowed},
		{http.MethodPost, "/healthz", http.StatusMethodNotAllowed},
		{http.MethodGet, "/nope", http.StatusNotFound},
	} {
		req, _ := http.NewRequest(tc.method, ts.URL+tc.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, resp.StatusCode, tc.want)
		}
	}
}

func TestServeShutdown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(config.Default(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve returned %v after shutdown", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after ctx was cancelled")
	}
	if _, err := http.Get("http://" + ln.Addr().String() + "/healthz"); err == nil {
		t.Error("still serving after shutdown")
	}
	// Shutdown with a stalled stream open: after the grace period the
	// stream is cancelled and Serve returns.
	ln, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s = New(config.Default(), nil)
	s.grace = 100 * time.Millisecond
	ended := make(chan StreamStats, 1)
	s.streamEnded = func(st StreamStats) { ended <- st }
	ctx, cancel = context.WithCancel(context.Background())
	go func() { done <- s.Serve(ctx, ln) }()
	pr, pw := io.Pipe()
	defer pw.Close()
	go pw.Write([]byte("{\"message\":\"hello\"}\n")) // then silence
	resp, err = http.Post("http://"+ln.Addr().String()+"/analyze_logs", "application/x-ndjson", pr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	cancel()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("Serve did not return with a stalled stream open")
	}
	select {
	case st := <-ended:
		if st.Events != 1 || st.Err == nil {
			t.Errorf("stalled stream stats %+v, want 1 event and an error", st)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("stalled stream not cancelled at shutdown")
	}

	bad := config.Default()
	bad.Listen = "127.0.0.1:not-a-port"
	if err := New(bad, nil).ListenAndServe(context.Background()); err == nil {
		t.Error("ListenAndServe on a bad address returned nil")
	}
}

// BenchmarkAnalyzeLogs measures a whole stream through the real HTTP stack.
func BenchmarkAnalyzeLogs(b *testing.B) {
	ts := newTestServer(b, nil)
	in := corpus(b, "timesketch-nested.jsonl")
	var body bytes.Buffer
	n := 0
	for body.Len() < 4<<20 {
		for _, l := range in {
			body.Write(l)
			body.WriteByte('\n')
			n++
		}
	}
	b.SetBytes(int64(body.Len()))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		resp, err := http.Post(ts.URL+"/analyze_logs", "application/x-ndjson", bytes.NewReader(body.Bytes()))
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		<-ts.ended
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// A client that waits for "100 Continue" (curl does for large bodies) must
// get it at once, not a premature final status.
func TestExpectContinue(t *testing.T) {
	ts := newTestServer(t, nil)
	in := corpus(t, "timesketch-nested.jsonl")
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{ExpectContinueTimeout: 5 * time.Second}}
	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/analyze_logs", bytes.NewReader(bytes.Join(in, []byte("\n"))))
	req.Header.Set("Expect", "100-continue")
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := readAgentLines(t, resp.Body)
	if len(out) == 0 {
		t.Fatal("no findings")
	}
	if st := <-ts.ended; st.Events != int64(len(in)) {
		t.Errorf("%d events analysed, want %d", st.Events, len(in))
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v: the client waited for 100 Continue", d)
	}
}
