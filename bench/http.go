package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/loupe-sec/loupe/internal/config"
	"github.com/loupe-sec/loupe/internal/server"
)

// evidenceLine is one event that is conclusive on its own (the Security
// log was cleared), so its finding can be emitted the moment it is read.
const evidenceLine = `{"Event":{"System":{"Provider":{"Name":"Microsoft-Windows-Eventlog"},"EventID":1102,"Channel":"Security","Computer":"bench-host","TimeCreated":{"SystemTime":"2024-05-01T10:00:00Z"},"EventRecordID":%d},"UserData":{"LogFileCleared":{"SubjectUserName":"mallory"}}}}` + "\n"

// firstFindingLatency measures, over a real loopback HTTP connection to the
// real server, the time from writing an evidence line (after a stretch of
// benign events) to reading the finding line it produces. Median of 20.
func firstFindingLatency(c *corpus) (time.Duration, error) {
	cfg := config.Default()
	srv := server.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go srv.Serve(ctx, ln)
	url := "http://" + ln.Addr().String() + "/analyze_logs"

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
