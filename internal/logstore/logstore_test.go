package logstore

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"text/scanner"
	"time"
)

func TestNewChoosesByStack(t *testing.T) {
	for _, tc := range []struct {
		stack string
		vm    bool
	}{{"vm", true}, {" VM ", true}, {"grafana", false}, {"", false}, {"vmx", false}} {
		s := New(tc.stack, "http://loki:3100", "http://vl:9428", nil)
		switch st := s.(type) {
		case *VictoriaLogs:
			if !tc.vm || st.URL != "http://vl:9428" {
				t.Errorf("STACK=%q: got VictoriaLogs %q", tc.stack, st.URL)
			}
		case *Loki:
			if tc.vm || st.URL != "http://loki:3100" {
				t.Errorf("STACK=%q: got Loki %q", tc.stack, st.URL)
			}
		default:
			t.Errorf("STACK=%q: %T", tc.stack, s)
		}
	}
}

func TestQueryWindow(t *testing.T) {
	at := time.Date(2024, 3, 19, 23, 41, 5, 0, time.UTC)
	start, end, limit, err := Query{Host: "h", Around: at}.window()
	if err != nil || !start.Equal(at.Add(-DefaultWindow)) || !end.Equal(at.Add(DefaultWindow)) || limit != DefaultLimit {
		t.Errorf("defaults: %v %v %d %v", start, end, limit, err)
	}
	start, end, limit, err = Query{Host: "h", Around: at, Before: time.Second, Limit: MaxLimit + 1}.window()
	if err != nil || !start.Equal(at.Add(-time.Second)) || !end.Equal(at) || limit != MaxLimit {
		t.Errorf("one-sided: %v %v %d %v", start, end, limit, err)
	}
	for _, bad := range []Query{
		{Host: "h"},                               // no time
		{Around: at},                              // nothing to match: would be the whole store
		{Host: "h", Around: at, Before: -1},       // negative window
		{ContainerID: "c", Around: at, Limit: -1}, // negative limit
	} {
		if _, _, _, err := bad.window(); !errors.Is(err, ErrQuery) {
			t.Errorf("%+v: err = %v, want ErrQuery", bad, err)
		}
	}
}

func TestLogQL(t *testing.T) {
	for _, tc := range []struct {
		q    Query
		want string
	}{
		{Query{Host: "web-1"}, `{hostname="web-1"}`},
		{Query{Host: "web-1", Rule: "Write below etc", ContainerID: "3ad7b26ded6d"}, `{hostname="web-1", rule="Write below etc"} |= "3ad7b26ded6d"`},
		{Query{ContainerID: "abc"}, `{rule=~".+"} |= "abc"`},
		{Query{Host: `"} or {job=~".+"}`}, `{hostname="\"} or {job=~\".+\"}"}`},
		{Query{Host: "a\nb|c\\"}, `{hostname="a\nb|c\\"}`},
	} {
		if got := tc.q.LogQL(); got != tc.want {
			t.Errorf("LogQL(%+v)\n got %s\nwant %s", tc.q, got, tc.want)
		}
	}
}

// checkLogQL scans a LogQL query the way Loki's lexer does (Go tokens) and
// checks that it is exactly the selector and filter built from q: every
// value is one string token equal to the input.
func checkLogQL(q Query) error {
	logql := q.LogQL()
	var s scanner.Scanner
	s.Init(strings.NewReader(logql))
	s.Mode = scanner.ScanIdents | scanner.ScanStrings
	s.Error = func(*scanner.Scanner, string) {}
	var toks []string
	for tok := s.Scan(); tok != scanner.EOF; tok = s.Scan() {
		text := s.TokenText()
		if tok == scanner.String {
			v, err := strconv.Unquote(text)
			if err != nil {
				return err
			}
			text = "S:" + v
		}
		toks = append(toks, text)
	}
	var want []string
	want = append(want, "{")
	sep := false
	add := func(label, v string) {
		if sep {
			want = append(want, ",")
		}
		want = append(want, label, "=", "S:"+v)
		sep = true
	}
	if q.Host != "" {
		add("hostname", q.Host)
	}
	if q.Rule != "" {
		add("rule", q.Rule)
	}
	if !sep {
		want = append(want, "rule", "=", "~", "S:.+")
	}
	want = append(want, "}")
	if q.ContainerID != "" {
		want = append(want, "|", "=", "S:"+q.ContainerID)
	}
	if strings.Join(toks, "\x00") != strings.Join(want, "\x00") {
		return errors.New("tokens " + strconv.Quote(strings.Join(toks, " ")) + " want " + strconv.Quote(strings.Join(want, " ")))
	}
	return nil
}

func TestLogQLTokens(t *testing.T) {
	for _, h := range hostile {
		for _, q := range []Query{{Host: h}, {Host: "h", ContainerID: h}, {Rule: h, ContainerID: h}} {
			if err := checkLogQL(q); err != nil {
				t.Errorf("%+v: %v", q, err)
			}
		}
	}
}

func TestLogsQL(t *testing.T) {
	start := time.Date(2024, 3, 19, 23, 40, 0, 0, time.UTC)
	end := start.Add(90*time.Second + 5*time.Nanosecond)
	got := Query{Host: `h"x`, Rule: "R", ContainerID: "c1"}.LogsQL(start, end)
	want := `_time:[2024-03-19T23:40:00Z, 2024-03-19T23:41:30.000000005Z] "hostname":="h\"x" "rule":="R" ` +
		`("output_fields.container.id":="c1" OR "container.id":="c1" OR "containerid":="c1" OR "container_id":="c1" OR _msg:"c1")`
	if got != want {
		t.Errorf("LogsQL\n got %s\nwant %s", got, want)
	}
}

func TestContainerIDFromText(t *testing.T) {
	for in, want := range map[string]string{
		"Notice A shell (user=root container_id=3ad7b26ded6d container_name=x)": "3ad7b26ded6d",
		"... k8s_ns=payments container_id=host)":                                "host",
		"container_id=abc":                                                      "abc",
		"xcontainer_id=zzz container_id=real":                                   "real",
		"no container here":                                                     "",
		"container_id=":                                                         "",
	} {
		if got := containerIDFromText(in); got != want {
			t.Errorf("containerIDFromText(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFromFalco(t *testing.T) {
	line := `{"hostname":"n1","output":"23:40:02Z: Notice shell (container_id=3ad7b26ded6d)","output_fields":{"container.id":"3ad7b26ded6d","evt.time":1},"priority":"Notice","rule":"Terminal shell in container","source":"syscall","tags":["T1059","container"],"time":"2024-03-19T23:40:02.391885178Z"}`
	ev, err := FromFalco([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Host != "n1" || ev.ContainerID != "3ad7b26ded6d" || ev.Rule != "Terminal shell in container" || ev.Priority != "Notice" ||
		ev.Time.UnixNano() != 1710891602391885178 || ev.Labels["source"] != "syscall" || ev.Labels["tags"] != "T1059,container" || string(ev.Raw) != line {
		t.Errorf("FromFalco = %+v", ev)
	}
	for _, bad := range []string{`not json`, `[1]`, `{"rule":"x"}`, `{"time":"yesterday"}`} {
		if _, err := FromFalco([]byte(bad)); err == nil {
			t.Errorf("FromFalco(%q) accepted", bad)
		}
	}
}

func TestParseVLogsRow(t *testing.T) {
	row := `{"_msg":"missing _msg field; see docs","_stream":"{hostname=\"h\"}","_stream_id":"0","_time":"2024-03-19T23:40:03.5Z","hostname":"h","output":"json line","output_fields.container.id":"abc","priority":"Notice","rule":"R","n":3}`
	ev, err := parseVLogsRow([]byte(row))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Message != "json line" || ev.ContainerID != "abc" || ev.Host != "h" || ev.Rule != "R" || ev.Priority != "Notice" ||
		!ev.Time.Equal(time.Date(2024, 3, 19, 23, 40, 3, 5e8, time.UTC)) || ev.Labels["n"] != "3" || ev.Labels["_stream"] == "" {
		t.Errorf("parseVLogsRow = %+v", ev)
	}
	if _, ok := ev.Labels["_msg"]; ok {
		t.Error("_msg kept as a label")
	}
	if _, err := parseVLogsRow([]byte(`{"_time":"soon"}`)); err == nil {
		t.Error("bad _time accepted")
	}
}

func TestReadRowsBounds(t *testing.T) {
	row := `{"_time":"2024-03-19T23:40:03Z","hostname":"h","_msg":"container_id=c1"}` + "\n"
	body := strings.Repeat(row, 10)
	vl := &VictoriaLogs{}
	got, err := vl.readRows(&boundedReader{r: strings.NewReader(body), left: int64(len(body))}, 4, Query{ContainerID: "c1"})
	if err != nil || len(got) != 4 {
		t.Fatalf("readRows: %d events, %v", len(got), err)
	}
	_, err = vl.readRows(&boundedReader{r: strings.NewReader(body), left: int64(len(body)) - 1}, 100, Query{})
	if !errors.Is(err, errTooLarge) {
		t.Errorf("over the byte bound: err = %v", err)
	}
	vl.MaxLineBytes = len(row) - 5
	_, err = vl.readRows(strings.NewReader(body), 100, Query{})
	if !errors.Is(err, errTooLarge) {
		t.Errorf("over the row bound: err = %v", err)
	}
	// Rows of another container (matched only as text) are dropped.
	vl.MaxLineBytes = 0
	got, err = vl.readRows(strings.NewReader(body), 100, Query{ContainerID: "c"})
	if err != nil || len(got) != 0 {
		t.Errorf("container check: %d events, %v", len(got), err)
	}
}

func TestHTTPErrorMessage(t *testing.T) {
	err := error(&HTTPError{Backend: "loki", Op: "query_range", Status: 400, Body: "parse error"})
	if got := err.Error(); got != "logstore: loki query_range: HTTP 400: parse error" {
		t.Errorf("Error() = %q", got)
	}
	if got := excerpt([]byte(strings.Repeat("ab\n", 200))); len(got) > 210 || strings.Contains(got, "\n") {
		t.Errorf("excerpt = %q", got)
	}
}
