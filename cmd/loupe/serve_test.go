package main

import (
	"net/http"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
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

	addrRE := regexp.MustCompile(`addr=(127\.0\.0\.1:\d+)`)
	var addr string
	deadline := time.Now().Add(5 * time.Second)
	for addr == "" {
		select {
		case code := <-done:
			t.Fatalf("serve exited early with %d: %s", code, errOut.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not log its address: %s", errOut.String())
		}
		if m := addrRE.FindStringSubmatch(errOut.String()); m != nil {
			addr = m[1]
		}
		time.Sleep(10 * time.Millisecond)
	}
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz: %s", resp.Status)
	}
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
