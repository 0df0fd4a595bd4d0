package logstore

// Integration tests against a real VictoriaLogs server. Start one with
//
//	export LOUPE_VLOGS_URL=$(scripts/victorialogs.sh start)
//
// Each test loads the Falco corpus under host names unique to the run, so a
// server can be reused across runs.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func vlogsURL(t *testing.T) string {
	t.Helper()
	u := os.Getenv("LOUPE_VLOGS_URL")
	if u == "" {
		t.Skip("LOUPE_VLOGS_URL not set: start a real VictoriaLogs with `export LOUPE_VLOGS_URL=$(scripts/victorialogs.sh start)`")
	}
	return u
}

// corpus reads testdata/attack/falco.jsonl as Events.
func corpus(t *testing.T) []Event {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "testdata", "attack", "falco.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var evs []Event
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		ev, err := FromFalco(sc.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(evs) != 20 {
		t.Fatalf("corpus has %d alerts, want 20", len(evs))
	}
	return evs
}

var runSeq atomic.Int64

// uniqueHosts gives every host of evs a suffix unique to this test run.
func uniqueHosts(evs []Event) string {
	suffix := ".run" + strconv.FormatInt(time.Now().UnixNano(), 36) + strconv.FormatInt(runSeq.Add(1), 10)
	for i := range evs {
		evs[i].Host += suffix
	}
	return suffix
}

// flush makes everything ingested so far searchable.
func flush(t *testing.T, base string) {
	t.Helper()
	resp, err := http.Get(base + "/internal/force_flush")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("force_flush: HTTP %d", resp.StatusCode)
	}
}

// expect filters the corpus the way Related must.
func expect(evs []Event, q Query) []Event {
	start, end, _, _ := q.window()
	var out []Event
	for _, ev := range evs {
		if ev.Time.Before(start) || ev.Time.After(end) {
			continue
		}
		if q.Host != "" && ev.Host != q.Host || q.ContainerID != "" && ev.ContainerID != q.ContainerID || q.Rule != "" && ev.Rule != q.Rule {
			continue
		}
		out = append(out, ev)
	}
	sortEvents(out)
	return out
}

func sameEvents(t *testing.T, got, want []Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d:\n got %v\nwant %v", len(got), len(want), summary(got), summary(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if !g.Time.Equal(w.Time) || g.Host != w.Host || g.ContainerID != w.ContainerID || g.Rule != w.Rule || g.Priority != w.Priority || g.Message != w.Message {
			t.Errorf("event %d:\n got %v %q %q %q %q %q\nwant %v %q %q %q %q %q", i,
				g.Time, g.Host, g.ContainerID, g.Rule, g.Priority, g.Message,
				w.Time, w.Host, w.ContainerID, w.Rule, w.Priority, w.Message)
		}
	}
}

func summary(evs []Event) []string {
	var s []string
	for _, ev := range evs {
		s = append(s, ev.Time.Format("15:04:05.000")+" "+ev.ContainerID+" "+ev.Rule)
	}
	return s
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

const nodeA = "ip-10-0-1-23.eu-west-1.compute.internal"

func TestVictoriaLogsRelated(t *testing.T) {
	base := vlogsURL(t)
	ctx := ctxT(t)
	vl := &VictoriaLogs{URL: base}
	if err := vl.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	evs := corpus(t)
	suffix := uniqueHosts(evs)
	if err := vl.Push(ctx, evs); err != nil {
		t.Fatal(err)
	}
	flush(t, base)
	host := nodeA + suffix
	around := time.Date(2024, 3, 19, 23, 42, 0, 0, time.UTC)

	t.Run("container in window", func(t *testing.T) {
		q := Query{Host: host, ContainerID: "3ad7b26ded6d", Around: around, Before: 2 * time.Minute, After: 2 * time.Minute}
		got, err := vl.Related(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		want := expect(evs, q)
		// 23:40:02 … 23:41:54 of container 3ad7b26ded6d; the window also
		// holds 9c41f0a5e2b7 and host alerts, which must not come back.
		if len(want) != 9 {
			t.Fatalf("corpus changed: %d expected events", len(want))
		}
		sameEvents(t, got, want)
		for _, ev := range got {
			if ev.Labels["source"] != "syscall" || !strings.Contains(ev.Labels["tags"], "container") {
				t.Errorf("labels %v lack source/tags", ev.Labels)
			}
			if len(ev.Raw) == 0 {
				t.Error("no Raw row")
			}
		}
	})

	t.Run("other container excluded", func(t *testing.T) {
		q := Query{Host: host, ContainerID: "9c41f0a5e2b7", Around: around, Before: 2 * time.Minute, After: 2 * time.Minute}
		got, err := vl.Related(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		want := expect(evs, q)
		if len(want) != 5 {
			t.Fatalf("corpus changed: %d expected events", len(want))
		}
		sameEvents(t, got, want)
	})

	t.Run("host only", func(t *testing.T) {
		q := Query{Host: "ip-10-0-2-41.eu-west-1.compute.internal" + suffix, Around: around, Before: 10 * time.Minute, After: 10 * time.Minute}
		got, err := vl.Related(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		want := expect(evs, q)
		if len(want) != 1 {
			t.Fatalf("corpus changed: %d expected events", len(want))
		}
		sameEvents(t, got, want)
	})

	t.Run("window bounds are inclusive to the nanosecond", func(t *testing.T) {
		c := expect(evs, Query{Host: host, ContainerID: "3ad7b26ded6d", Around: around, Before: time.Hour, After: time.Hour})
		first, alert, last := c[1].Time, c[3].Time, c[5].Time
		q := Query{Host: host, ContainerID: "3ad7b26ded6d", Around: alert, Before: alert.Sub(first), After: last.Sub(alert)}
		got, err := vl.Related(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		sameEvents(t, got, c[1:6])
		q.Before -= time.Nanosecond
		q.After -= time.Nanosecond
		got, err = vl.Related(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		sameEvents(t, got, c[2:5])
	})

	t.Run("limit keeps the latest", func(t *testing.T) {
		q := Query{Host: host, ContainerID: "3ad7b26ded6d", Around: around, Before: 2 * time.Minute, After: 2 * time.Minute, Limit: 3}
		got, err := vl.Related(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		want := expect(evs, q)
		sameEvents(t, got, want[len(want)-3:])
	})

	t.Run("rule", func(t *testing.T) {
		q := Query{Host: host, Rule: "Read sensitive file untrusted", Around: around, Before: 10 * time.Minute, After: 10 * time.Minute}
		got, err := vl.Related(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		want := expect(evs, q)
		if len(want) != 2 {
			t.Fatalf("corpus changed: %d expected events", len(want))
		}
		sameEvents(t, got, want)
	})
}

// hostile values an alert field could carry to widen a query.
var hostile = []string{
	`x" or hostname:*`,
	`"} or {job=~".+"}`,
	`") OR * OR ("`,
	`*`,
	`a|b`,
	"line1\nline2",
	`back\slash "quoted"`,
	"tab\tand\x01ctl",
	`' OR '1'='1`,
}

func TestVictoriaLogsInjection(t *testing.T) {
	base := vlogsURL(t)
	ctx := ctxT(t)
	vl := &VictoriaLogs{URL: base}
	evs := corpus(t)
	suffix := uniqueHosts(evs)
	// One extra event per hostile host name, stored literally.
	at := evs[0].Time
	var extra []Event
	for i, h := range hostile {
		extra = append(extra, Event{
			Time: at.Add(time.Duration(i) * time.Millisecond), Host: h + suffix, ContainerID: "",
			Rule: "Hostile host", Priority: "Notice", Message: "hostile " + strconv.Itoa(i) + " container_id=c0ffee" + strconv.Itoa(i),
			Labels: map[string]string{"source": "syscall"},
		})
	}
	for i := range extra {
		extra[i].ContainerID = "c0ffee" + strconv.Itoa(i)
	}
	if err := vl.Push(ctx, append(evs, extra...)); err != nil {
		t.Fatal(err)
	}
	flush(t, base)
	win := func(q Query) Query { q.Around, q.Before, q.After = at, time.Hour, time.Hour; return q }

	// Every hostile host round-trips exactly: the quoting neither breaks
	// the query nor widens it.
	for i, h := range hostile {
		got, err := vl.Related(ctx, win(Query{Host: h + suffix}))
		if err != nil {
			t.Fatalf("host %q: %v", h, err)
		}
		sameEvents(t, got, extra[i:i+1])
	}
	// Hostile values that match nothing stored return nothing, where a
	// widened query would return the whole corpus.
	host := nodeA + suffix
	for _, h := range hostile {
		for _, q := range []Query{
			{Host: host + h},
			{Host: h},
			{Host: host, ContainerID: "3ad7b26ded6d" + h},
			{Host: host, ContainerID: h},
			{Host: host, Rule: "Terminal shell in container" + h},
		} {
			got, err := vl.Related(ctx, win(q))
			if err != nil {
				t.Fatalf("%+v: %v", q, err)
			}
			if len(got) != 0 {
				t.Errorf("query %q / %q / %q returned %d events: %v", q.Host, q.ContainerID, q.Rule, len(got), summary(got))
			}
			// The rows the server itself returns, before Related's own
			// container check, must match the values literally: a
			// widened query would return other hosts, rules or messages.
			for _, row := range rawRows(t, base, win(q)) {
				if q.Host != "" && row.Host != q.Host || q.Rule != "" && row.Rule != q.Rule ||
					q.ContainerID != "" && row.ContainerID != q.ContainerID && !strings.Contains(row.Message, q.ContainerID) {
					t.Errorf("query %q / %q / %q: server returned unrelated row %s %q", q.Host, q.ContainerID, q.Rule, row.Host, row.Message)
				}
			}
		}
	}
}

// rawRows runs q's LogsQL against the server and returns the result rows.
func rawRows(t *testing.T, base string, q Query) []Event {
	t.Helper()
	start, end, _, err := q.window()
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.PostForm(base+"/select/logsql/query", url.Values{"query": {q.LogsQL(start, end)}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("query %s: HTTP %d: %s", q.LogsQL(start, end), resp.StatusCode, body)
	}
	var rows []Event
	for _, line := range bytes.Split(bytes.TrimSpace(body), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		ev, err := parseVLogsRow(line)
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, ev)
	}
	return rows
}

// SIB with STACK=vm: falcosidekick's Loki output pushes Falco output text with
// labels to VictoriaLogs' Loki endpoint. Loki.Push produces that request;
// VictoriaLogs.Related must then find the events by host and container.
func TestLokiPushIntoVictoriaLogs(t *testing.T) {
	base := vlogsURL(t)
	ctx := ctxT(t)
	evs := corpus(t)
	suffix := uniqueHosts(evs)
	for i := range evs {
		evs[i].Raw = nil // ship the output text, as falcosidekick does
	}
	lk := &Loki{URL: base + "/insert"}
	if err := lk.Push(ctx, evs); err != nil {
		t.Fatal(err)
	}
	flush(t, base)
	vl := &VictoriaLogs{URL: base}
	q := Query{Host: nodeA + suffix, ContainerID: "3ad7b26ded6d", Around: evs[4].Time, Before: time.Minute, After: time.Minute}
	got, err := vl.Related(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	want := expect(evs, q)
	if len(want) != 8 {
		t.Fatalf("corpus changed: %d expected events", len(want))
	}
	sameEvents(t, got, want)
	for _, ev := range got {
		if ev.Labels["source"] != "syscall" || ev.Labels["tags"] == "" {
			t.Errorf("labels %v lack falcosidekick's source/tags", ev.Labels)
		}
	}
}

func TestVictoriaLogsHTTPError(t *testing.T) {
	base := vlogsURL(t)
	vl := &VictoriaLogs{URL: base + "/no/such/prefix"}
	_, err := vl.Related(ctxT(t), Query{Host: "h", Around: time.Now()})
	var he *HTTPError
	if !errors.As(err, &he) {
		t.Fatalf("err = %v, want *HTTPError", err)
	}
	if he.Backend != "victorialogs" || he.Status < 400 || !strings.Contains(he.Body, "unsupported path") {
		t.Errorf("HTTPError = %+v", he)
	}
	if !strings.Contains(err.Error(), "HTTP "+strconv.Itoa(he.Status)) {
		t.Errorf("message %q lacks the status", err)
	}
}

func TestVictoriaLogsDeadline(t *testing.T) {
	base := vlogsURL(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := (&VictoriaLogs{URL: base}).Related(ctx, Query{Host: "h", Around: time.Now()})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}
