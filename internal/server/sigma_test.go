package server

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/loupe-sec/loupe/internal/sigma"
)

func sigmaSet(t *testing.T, title string) *sigma.Ruleset {
	t.Helper()
	rs := sigma.Parse("r.yml", []byte(`title: `+title+`
id: rule-`+strings.ReplaceAll(title, " ", "-")+`
author: loupe tests
tags: [attack.discovery, attack.t1033]
logsource: {product: windows, category: process_creation}
detection:
    sel:
        CommandLine|contains: [whoami, 'net user']
    condition: sel
level: high
`), sigma.Options{})
	if len(rs.Rules) != 1 {
		t.Fatalf("rule did not load: %v", rs.Problems)
	}
	return rs
}

// A stream runs the Sigma rules it started with; a reload (SetSigma)
// applies to the streams that start afterwards.
func TestSigmaReloadKeepsInFlightStreams(t *testing.T) {
	ts := newTestServer(t, nil)
	ts.srv.SetSigma(sigmaSet(t, "Rule A"))
	lines := corpus(t, "evtx.jsonl")
	var whoami, netUser []byte
	for _, l := range lines {
		switch {
		case bytes.Contains(l, []byte(`"whoami /all"`)):
			whoami = l
		case bytes.Contains(l, []byte(`"net user hacker`)):
			netUser = l
		}
	}
	if whoami == nil || netUser == nil {
		t.Fatal("corpus lacks the whoami or net user event")
	}

	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", ts.URL+"/analyze_logs", pr)
	done := make(chan *http.Response, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			close(done)
			return
		}
		done <- resp
	}()
	pw.Write(append(whoami, '\n'))
	resp := <-done
	if resp == nil {
		return
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	readUntil := func(want string) string {
		var seen strings.Builder
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			l, err := br.ReadString('\n')
			seen.WriteString(l)
			if strings.Contains(l, want) {
				return seen.String()
			}
			if err != nil {
				break
			}
		}
		t.Fatalf("no %q in the stream:\n%s", want, seen.String())
		return ""
	}
	readUntil(`Sigma rule \"Rule A\"`) // the stream is running with set A
	ts.srv.SetSigma(sigmaSet(t, "Rule B"))
	pw.Write(append(netUser, '\n'))
	pw.Close()
	rest, _ := io.ReadAll(br)
	if !strings.Contains(string(rest), `Sigma rule \"Rule A\"`) || strings.Contains(string(rest), "Rule B") {
		t.Errorf("in-flight stream after the reload:\n%s", rest)
	}

	// A new stream gets set B.
	resp2, err := http.Post(ts.URL+"/analyze_logs", "application/x-ndjson", bytes.NewReader(append(netUser, '\n')))
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	out, _ := io.ReadAll(resp2.Body)
	if !strings.Contains(string(out), `Sigma rule \"Rule B\"`) || strings.Contains(string(out), "Rule A") {
		t.Errorf("new stream after the reload:\n%s", out)
	}
}
