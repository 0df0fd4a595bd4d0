package origin

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/loupe-sec/loupe/internal/event"
)

// These tests run against a real VictoriaLogs:
//
//	export LOUPE_VLOGS_URL=$(scripts/victorialogs.sh start)
//
// Every test tags the rows it loads with a field unique to the run, so a
// server can be reused.

func vlogsURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("LOUPE_VLOGS_URL")
	if u == "" {
		t.Skip("LOUPE_VLOGS_URL not set: start a real VictoriaLogs with `export LOUPE_VLOGS_URL=$(scripts/victorialogs.sh start)`")
	}
	return u
}

func runID() string { return "r" + strconv.FormatInt(time.Now().UnixNano(), 36) }

// vlogsInsert loads JSON lines through /insert/jsonline, each with the
// field loupe_run=run added, and makes them searchable.
func vlogsInsert(t testing.TB, base, run string, lines [][]byte, msgField, timeField, streamFields string) {
	t.Helper()
	var body bytes.Buffer
	for _, l := range lines {
		l = bytes.TrimSpace(l)
		body.Write(l[:len(l)-1])
		body.WriteString(`,"loupe_run":"` + run + `"}` + "\n")
	}
	q := url.Values{"_msg_field": {msgField}, "_time_field": {timeField}, "_stream_fields": {streamFields}}
	req, _ := http.NewRequest(http.MethodPost, base+"/insert/jsonline?"+q.Encode(), &body)
	req.Header.Set("Content-Type", "application/stream+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("insert: HTTP %d", resp.StatusCode)
	}
	resp, err = http.Get(base + "/internal/force_flush")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

// The investigation over VictoriaLogs finds what the file source finds on
// the same Falco alerts, loaded the way a JSON shipper stores them (output
// as _msg, time as _time, nested fields flattened with dots, the tags list
// as JSON text).
func TestVictoriaLogsSameFindingsAsFile(t *testing.T) {
	base := vlogsURL(t)
	alerts := loadFalco(t, falcoCorpus(t))
	run := runID()
	var lines [][]byte
	for _, a := range alerts {
		lines = append(lines, a.line)
	}
	vlogsInsert(t, base, run, lines, "output", "time", "hostname,rule,priority,source")
	file := storeOrder(t, alerts, func(falcoAlert) string { return "" })
	start, end := timeSpan(alerts)
	spec := Spec{Kind: KindVictoriaLogs, URL: base, Query: `loupe_run:=` + strconv.Quote(run), Start: start, End: end}

	evs := waitRows(t, spec, len(alerts))
	for i, ev := range evs {
		if ev.Format != event.FormatFalco || ev.Line != int64(i+1) || ev.Rule == "" || ev.CommandLine == "" && ev.Image == "" {
			t.Errorf("event %d: format %v line %d rule %q cmdline %q image %q", i+1, ev.Format, ev.Line, ev.Rule, ev.CommandLine, ev.Image)
		}
	}
	seq, _ := Open(context.Background(), spec)
	sameFindings(t, "victorialogs", analyze(t, seq), fileFindings(t, file), false)

	// Ids are stable across reads.
	again := waitRows(t, spec, len(alerts))
	for i := range evs {
		if evs[i].ID != again[i].ID {
			t.Fatalf("event %d: id %s then %s", i+1, evs[i].ID, again[i].ID)
		}
	}
}

// waitRows reads spec until it returns n rows (ingestion is asynchronous).
func waitRows(t testing.TB, spec Spec, n int) []*event.Event {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		seq, err := Open(context.Background(), spec)
		if err != nil {
			t.Fatal(err)
		}
		evs := collect(t, seq)
		if len(evs) == n || time.Now().After(deadline) {
			if len(evs) != n {
				t.Fatalf("read %d rows, loaded %d", len(evs), n)
			}
			return evs
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Start is inclusive and End exclusive, to the nanosecond; a _msg that is a
// whole JSON record is parsed as that record; rows come back in time order.
func TestVictoriaLogsRangeAndJSONMessages(t *testing.T) {
	base := vlogsURL(t)
	run := runID()
	t0 := time.Date(2025, 6, 1, 12, 0, 0, 123456789, time.UTC)
	var lines [][]byte
	for i := 4; i >= 0; i-- { // inserted newest first
		ts := t0.Add(time.Duration(i))
		rec := `{"Event":{"System":{"EventID":4625,"Channel":"Security","Computer":"dc1","EventRecordID":` + strconv.Itoa(100+i) +
			`,"TimeCreated":{"SystemTime":"` + ts.Format(time.RFC3339Nano) + `"}},"EventData":{"TargetUserName":"u` + strconv.Itoa(i) + `","IpAddress":"198.51.100.9","LogonType":"3"}}}`
		row := `{"_msg":` + strconv.Quote(rec) + `,"_time":"` + ts.Format(time.RFC3339Nano) + `"}`
		lines = append(lines, []byte(row))
	}
	vlogsInsert(t, base, run, lines, "_msg", "_time", "loupe_run")
	spec := Spec{Kind: KindVictoriaLogs, URL: base, Query: `loupe_run:=` + strconv.Quote(run), Start: t0.Add(1), End: t0.Add(4)}
	evs := waitRows(t, spec, 3)
	for i, ev := range evs {
		want := "u" + strconv.Itoa(i+1)
		if ev.Format != event.FormatEVTX || ev.EventID != 4625 || ev.TargetUser != want || ev.ID != "dc1:Security:"+strconv.Itoa(101+i) ||
			!ev.Time.Equal(t0.Add(time.Duration(i+1))) {
			t.Errorf("row %d: %v %d %q %s %v", i, ev.Format, ev.EventID, ev.TargetUser, ev.ID, ev.Time)
		}
	}

	// A LogsQL syntax error comes back as the server's 400.
	seq, _ := Open(context.Background(), Spec{Kind: KindVictoriaLogs, URL: base, Query: `loupe_run:=(`})
	var last error
	for _, err := range seq {
		last = err
	}
	var se *StatusError
	if !errors.As(last, &se) || se.Status != http.StatusBadRequest {
		t.Errorf("bad LogsQL: %v", last)
	}
}
