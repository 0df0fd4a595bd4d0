package main

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/loupe-sec/loupe/internal/llm"
	"github.com/loupe-sec/loupe/internal/llm/llmtest"
)

// serve runs in-process until SIGINT, then shuts down cleanly.
func TestServeUntilSignal(t *testing.T) {
	t.Setenv("LOUPE_TOKEN", "very-secret-token")
	var errOut syncBuffer
	var out syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run([]string{"serve", "--listen", "127.0.0.1:0", "--log-format", "text"}, strings.NewReader(""), &out, &errOut)
	}()

	addr := waitListening(t, &errOut, done)
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz: %s", resp.Status)
	}
	stopServe(t, &errOut, done)
	log := errOut.String()
	if strings.Contains(log, "very-secret-token") || !strings.Contains(log, "[redacted]") {
		t.Errorf("token not redacted in the log: %s", log)
	}
}

func TestServeBadAddress(t *testing.T) {
	t.Setenv("LOUPE_TOKEN", "very-secret-token")
	var errOut, out syncBuffer
	code := run([]string{"serve", "--listen", "127.0.0.1:bad"}, strings.NewReader(""), &out, &errOut)
	if code != exitError {
		t.Errorf("bad listen address: exit %d, want %d", code, exitError)
	}
	if strings.Contains(errOut.String(), "very-secret-token") {
		t.Errorf("token in log: %s", errOut.String())
	}
}

// waitListening returns the address serve logs once it listens.
func waitListening(t *testing.T, errOut *syncBuffer, done <-chan int) string {
	t.Helper()
	addrRE := regexp.MustCompile(`addr=(127\.0\.0\.1:\d+)`)
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case code := <-done:
			t.Fatalf("serve exited early with %d: %s", code, errOut.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not log its address: %s", errOut.String())
		}
		if m := addrRE.FindStringSubmatch(errOut.String()); m != nil {
			return m[1]
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// With --llm-reasoning, the stage's model calls and its cache show in
// /metrics next to the stream's events.
func TestServeLLMReasoningMetrics(t *testing.T) {
	model := llmtest.New(t, llm.Ollama, func(n int, c llmtest.Call) llmtest.Reply {
		return llmtest.Reply{Status: 500, Raw: `{"error":"model unavailable"}`}
	})
	var errOut, out syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run([]string{"serve", "--listen", "127.0.0.1:0", "--log-format", "text", "--llm-reasoning",
			"--llm-provider", "ollama", "--llm-model", "tiny", "--llm-base-url", model.BaseURL()},
			strings.NewReader(""), &out, &errOut)
	}()
	addr := waitListening(t, &errOut, done)
	body, err := os.ReadFile("../../testdata/attack/evtx.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post("http://"+addr+"/analyze_logs", "application/x-ndjson", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	lines, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(lines, []byte(`"fallback"`)) {
		t.Errorf("no finding marked with the model's failure:\n%.2000s", lines)
	}
	resp, err = http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	text, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`loupe_llm_calls_total{model="tiny",outcome="error",provider="ollama"}`,
		`loupe_cache_misses_total{cache="llm"}`,
		`loupe_events_read_total{kind="stream"} ` + strconv.Itoa(bytes.Count(body, []byte("\n"))),
	} {
		if !bytes.Contains(text, []byte(want)) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if len(model.Calls()) == 0 {
		t.Error("the model was never asked")
	}
	stopServe(t, &errOut, done)
}

// stopServe sends SIGINT to the process and waits for serve to exit cleanly.
func stopServe(t *testing.T, errOut *syncBuffer, done <-chan int) {
	t.Helper()
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != exitOK {
			t.Fatalf("serve exited with %d: %s", code, errOut.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop on SIGINT")
	}
}
