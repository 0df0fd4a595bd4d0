package server

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/loupe-sec/loupe/internal/config"
	"github.com/loupe-sec/loupe/internal/logstore"
)

// TestAnalyzeWithRelatedEventsFromVictoriaLogs loads the Falco corpus into
// a real VictoriaLogs (started by scripts/test.sh) and checks that an
// analysis carries the events from the alert's host and container.
func TestAnalyzeWithRelatedEventsFromVictoriaLogs(t *testing.T) {
	url := os.Getenv("LOUPE_VLOGS_URL")
	if url == "" {
		t.Skip("LOUPE_VLOGS_URL not set: start a real server with scripts/victorialogs.sh start")
	}
	lines := corpus(t, "falco.jsonl")
	var evs []logstore.Event
	for _, l := range lines {
		ev, err := logstore.FromFalco(l)
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	vl := &logstore.VictoriaLogs{URL: url, Client: http.DefaultClient}
	if err := vl.Push(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	// Make what was ingested searchable now rather than after the next flush.
	if resp, err := http.Get(url + "/internal/force_flush"); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}

	ts := newTestServer(t, func(c *config.Config) {
		c.Stack = "vm"
		c.VictoriaLogsURL = url
		c.CacheEnabled = false
	})
	// The "Terminal shell in container" alert of container 3ad7b26ded6d.
	var alertLine []byte
	for _, l := range lines {
		if strings.Contains(string(l), `"rule":"Terminal shell in container"`) {
			alertLine = l
			break
		}
	}
	if alertLine == nil {
		t.Fatal("corpus has no terminal-shell alert")
	}
	_, body := postJSON(t, ts.URL+"/api/analyze", `{"alert":`+string(alertLine)+`}`, nil)
	var got struct {
		Meta struct {
			RelatedEvents []struct {
				Rule, Hostname, Output string
			} `json:"related_events"`
		} `json:"meta"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	rel := got.Meta.RelatedEvents
	if len(rel) == 0 {
		t.Fatalf("no related events: %s", body)
	}
	for _, r := range rel {
		if r.Hostname != "ip-10-0-1-23.eu-west-1.compute.internal" || !strings.Contains(r.Output, "3ad7b26ded6d") {
			t.Errorf("related event from another host or container: %+v", r)
		}
	}
	if rel[0].Rule == "" {
		t.Errorf("related event without its rule: %+v", rel[0])
	}
}
