package source

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"testing"

	"github.com/tidwall/gjson"
)

var fuzzSeeds = []string{
	`{"Event":{"System":{"Provider":{"#attributes":{"Name":"Microsoft-Windows-Sysmon"}},"EventID":{"#text":1},"Channel":"c","Computer":"h","EventRecordID":1,"TimeCreated":{"#attributes":{"SystemTime":"2019-03-19T23:34:17.1234567Z"}}},"EventData":{"Data":[{"@Name":"Image","#text":"x"}]}}}`,
	`{"Event":{"System":{"EventID":"4625"},"UserData":{"X":{"a":"b"}}}}`,
	`{"hostname":"h","output":"o","priority":"Warning","rule":"r","tags":["a"],"time":"2024-01-01T10:00:00.123456789Z","output_fields":{"proc.cmdline":"c","fd.sip":"1.2.3.4"}}`,
	`{"_index":"i","_id":"a","_source":{"data_type":"windows:evtx:record","xml_string":"<Event><EventData><Data Name=\"A\">&amp;&#x41;</Data><Data Name=\"B\"/></EventData><UserData><X><Y>1</Y></X></UserData></Event>"}}`,
	`{"_id":"a","__ts_index_name":"i","pid":NaN,"timestamp":-Infinity,"data_type":"syslog:line","body":"Failed password for root from 1.2.3.4 port 1 ssh2"}`,
	`{"winlog":{"event_id":"7045","event_data":{"ServiceName":"s"}},"@timestamp":"2024-01-01 10:00:00,5 UTC"}`,
	`{"ts":1e9,"time":"99999999999999999999","msg":"sudo: a : TTY=x ; USER=root ; COMMAND=/bin/sh"}`,
	"Mar 19 23:34:17 web01 sshd[123]: Failed password for invalid user admin from 10.1.2.3 port 4242 ssh2",
	`<34>1 2024-01-01T10:00:00Z host app 123 - [a b="\]"] msg`,
	"2024-01-01T10:00:00.123+00:00 host CRON[1]: (root) CMD (id)",
	"<13>Feb 29 00:00:00 h gpasswd[1]: user x added by y to group z",
}

func FuzzParseLine(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		orig := append([]byte(nil), line...)
		ev, err := ParseLine(line, 3, Options{Name: "fuzz", MaxLineBytes: 4096})
		if !bytes.Equal(line, orig) {
			t.Fatal("ParseLine modified its input")
		}
		if err != nil {
			var le *LineError
			if !errors.As(err, &le) || le.Line != 3 {
				t.Fatalf("error %v is not a LineError for line 3", err)
			}
			return
		}
		if ev.ID == "" || ev.Line != 3 {
			t.Fatalf("event without id or with wrong line: %+v", ev)
		}
		if ev.DataPath != "" {
			ev.Data("x") // must not panic
		}
		if o := ev.DataObject; o != "" && (o[0] != '{' || o[len(o)-1] != '}' || !gjson.Valid(o)) {
			t.Fatalf("DataObject is not a JSON object: %q", o)
		}
		// Parsing is deterministic.
		ev2, err := ParseLine(line, 3, Options{Name: "fuzz", MaxLineBytes: 4096})
		if err != nil || ev2.ID != ev.ID || ev2.Message != ev.Message || !ev2.Time.Equal(ev.Time) {
			t.Fatalf("second parse differs: %v", err)
		}
	})
}

func FuzzRead(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s+"\n\r\n"+s+"\n"), false)
	}
	f.Add([]byte("{}\n\n{\"a\":\n"), true)
	f.Fuzz(func(t *testing.T, data []byte, zip bool) {
		in := data
		if zip {
			var b bytes.Buffer
			zw := gzip.NewWriter(&b)
			zw.Write(data)
			zw.Close()
			in = b.Bytes()
		}
		lastLine := int64(0)
		for ev, err := range Read(context.Background(), bytes.NewReader(in), Options{Name: "fuzz", MaxLineBytes: 256}) {
			var line int64
			if err != nil {
				var le *LineError
				if !errors.As(err, &le) {
					t.Fatalf("non-line error on in-memory input: %v", err)
				}
				line = le.Line
			} else {
				if ev.ID == "" {
					t.Fatalf("line %d: event without id", ev.Line)
				}
				line = ev.Line
			}
			if line <= lastLine {
				t.Fatalf("line numbers not increasing: %d after %d", line, lastLine)
			}
			lastLine = line
		}
		if n := int64(bytes.Count(data, []byte{'\n'})) + 1; lastLine > n {
			t.Fatalf("line %d reported for input of %d lines", lastLine, n)
		}
	})
}
