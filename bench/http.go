package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"
)

// evidenceLine is one event that is conclusive on its own (the Security
// log was cleared), so its finding can be emitted the moment it is read.
const evidenceLine = `{"Event":{"System":{"Provider":{"Name":"Microsoft-Windows-Eventlog"},"EventID":1102,"Channel":"Security","Computer":"bench-host","TimeCreated":{"SystemTime":"2024-05-01T10:00:00Z"},"EventRecordID":%d},"UserData":{"LogFileCleared":{"SubjectUserName":"mallory"}}}}` + "\n"

// firstFindingLatency measures, over a real loopback HTTP connection to
// the real `loupe serve` binary (built from ./cmd/loupe), the time from
// writing an evidence line (after a stretch of benign events) to reading
// the finding line it produces. Median of 20.
func firstFindingLatency(c *corpus, repo string) (time.Duration, error) {
	dir, err := os.MkdirTemp("", "loupe-bench")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "loupe")
	build := exec.Command("go", "build", "-o", bin, "./cmd/loupe")
	build.Dir, build.Stderr = repo, os.Stderr
	if err := build.Run(); err != nil {
		return 0, fmt.Errorf("build loupe: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	addr := ln.Addr().String()
	ln.Close()
	srv := exec.Command(bin, "serve", "--listen", addr)
	srv.Env = append(os.Environ(), "LOUPE_LOG_LEVEL=error")
	if err := srv.Start(); err != nil {
		return 0, err
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	for i := 0; ; i++ {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if i == 100 {
			return 0, fmt.Errorf("loupe serve did not come up: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	url := "http://" + addr + "/analyze_logs"

	var benign bytes.Buffer
	for _, l := range c.lines[:min(len(c.lines), 200)] {
		benign.Write(l)
		benign.WriteByte('\n')
	}
	var samples []time.Duration
	for i := range 20 {
		d, err := oneLatency(url, benign.Bytes(), i)
		if err != nil {
			return 0, err
		}
		samples = append(samples, d)
	}
	slices.Sort(samples)
	return samples[len(samples)/2], nil
}

func oneLatency(url string, benign []byte, n int) (time.Duration, error) {
	pr, pw := io.Pipe()
	req, err := http.NewRequest(http.MethodPost, url, pr)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	type got struct {
		at  time.Time
		err error
	}
	found := make(chan got, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			found <- got{err: err}
			return
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if bytes.Contains(sc.Bytes(), []byte(`"record_id":"bench-host:Security:`)) {
				found <- got{at: time.Now()}
				io.Copy(io.Discard, resp.Body)
				return
			}
		}
		found <- got{err: fmt.Errorf("stream ended without the finding (%v)", sc.Err())}
	}()
	if _, err := pw.Write(benign); err != nil {
		return 0, err
	}
	time.Sleep(20 * time.Millisecond)
	sent := time.Now()
	if _, err := fmt.Fprintf(pw, evidenceLine, 1000+n); err != nil {
		return 0, err
	}
	var g got
	select {
	case g = <-found:
	case <-time.After(10 * time.Second):
		g.err = fmt.Errorf("no finding within 10 s")
	}
	pw.Close()
	if g.err != nil {
		return 0, g.err
	}
	return g.at.Sub(sent), nil
}
