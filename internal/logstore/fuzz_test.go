package logstore

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"text/scanner"
	"time"
)

// FuzzLogQL: whatever an alert carries, the LogQL query is exactly the
// intended selector and filter, each value one string token.
func FuzzLogQL(f *testing.F) {
	for _, h := range hostile {
		f.Add(h, "3ad7b26ded6d", "")
		f.Add("web-1", h, h)
	}
	f.Fuzz(func(t *testing.T, host, container, rule string) {
		if err := checkLogQL(Query{Host: host, ContainerID: container, Rule: rule}); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzLogsQL: the string tokens of the LogsQL query are exactly the field
// names and values, in order, so no value can add a filter or a pipe.
func FuzzLogsQL(f *testing.F) {
	for _, h := range hostile {
		f.Add(h, "3ad7b26ded6d", "")
		f.Add("web-1", h, h)
	}
	start := time.Date(2024, 3, 19, 23, 40, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, host, container, rule string) {
		q := Query{Host: host, ContainerID: container, Rule: rule}
		logsql := q.LogsQL(start, start.Add(time.Minute))
		var s scanner.Scanner
		s.Init(strings.NewReader(logsql))
		s.Mode = scanner.ScanStrings
		s.Error = func(*scanner.Scanner, string) {}
		var got []string
		depth := 0
		for tok := s.Scan(); tok != scanner.EOF; tok = s.Scan() {
			switch tok {
			case scanner.String:
				v, err := strconv.Unquote(s.TokenText())
				if err != nil {
					t.Fatalf("%s: %v", logsql, err)
				}
				got = append(got, v)
			case '(':
				depth++
			case ')':
				depth--
			case '|', '\n':
				t.Fatalf("pipe or newline outside a string: %s", logsql)
			}
		}
		var want []string
		if host != "" {
			want = append(want, "hostname", host)
		}
		if rule != "" {
			want = append(want, "rule", rule)
		}
		if container != "" {
			for _, f := range vlogsContainerFields {
				want = append(want, f, container)
			}
			want = append(want, container)
		}
		if depth != 0 || strings.Join(got, "\x00") != strings.Join(want, "\x00") {
			t.Fatalf("%s: strings %q, want %q (depth %d)", logsql, got, want, depth)
		}
	})
}

func FuzzParseLokiResponse(f *testing.F) {
	f.Add([]byte(`{"status":"success","data":{"resultType":"streams","result":[{"stream":{"hostname":"n1"},"values":[["1710891602391885178","container_id=abc x"],["1","{\"rule\":\"R\",\"output_fields\":{\"container.id\":\"c\"}}"]]}]}}`))
	f.Add([]byte(`{"status":"success","data":{"resultType":"streams","result":[{"stream":{},"values":[["1","l",{}]]}]}}`))
	f.Add([]byte(`{"status":"error"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		es, err := parseLokiResponse(body)
		if err != nil {
			return
		}
		for i := range es {
			ev := es[i].event()
			if ev.Time.UnixNano() != es[i].ns {
				t.Fatalf("time %v from ns %d", ev.Time, es[i].ns)
			}
			if len(ev.Raw) > 0 && !json.Valid(ev.Raw) {
				t.Fatalf("Raw is not JSON: %q", ev.Raw)
			}
		}
	})
}

func FuzzParseVLogsRow(f *testing.F) {
	f.Add([]byte(`{"_msg":"x container_id=abc","_time":"2024-03-19T23:40:03.5Z","hostname":"h","rule":"R"}`))
	f.Add([]byte(`{"_msg":"missing _msg field","output":"o","output_fields.container.id":"c","n":1}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		ev, err := parseVLogsRow(line)
		if err != nil {
			return
		}
		if _, ok := ev.Labels["_msg"]; ok {
			t.Fatal("_msg kept as a label")
		}
		if !json.Valid(ev.Raw) {
			t.Fatalf("Raw is not JSON: %q", ev.Raw)
		}
	})
}

func FuzzFalcoLine(f *testing.F) {
	f.Add(`{"hostname":"n1","output":"x (container_id=3ad7b26ded6d)","output_fields":{"container.id":"3ad7b26ded6d"},"priority":"Notice","rule":"R","time":"2024-03-19T23:40:02.391885178Z"}`)
	f.Add(`23:40:02Z: Notice shell (user=root container_id=host k8s_ns=)`)
	f.Add(`{"output_fields":{"container.id":5}}`)
	f.Fuzz(func(t *testing.T, line string) {
		var ev Event
		fillFromLine(&ev, line)
		if strings.ContainsAny(ev.ContainerID, " \t\r\n),;") && len(ev.Raw) == 0 {
			t.Fatalf("container id %q from text %q", ev.ContainerID, line)
		}
		if len(ev.Raw) == 0 && ev.Message != line {
			t.Fatalf("text line lost: %q", ev.Message)
		}
		if len(ev.Raw) > 0 && !json.Valid(ev.Raw) {
			t.Fatalf("Raw is not JSON: %q", ev.Raw)
		}
	})
}
