package origin

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/loupe-sec/loupe/internal/event"
	"github.com/tidwall/gjson"
)

// checkEvent holds for every event an origin yields.
func checkEvent(t *testing.T, ev *event.Event, err error) {
	t.Helper()
	if err != nil {
		if ev != nil {
			t.Fatalf("event and error together: %v", err)
		}
		return
	}
	if ev == nil || ev.ID == "" || ev.Line <= 0 {
		t.Fatalf("event %+v", ev)
	}
	if len(ev.Raw) > 0 && !json.Valid(ev.Raw) {
		t.Fatalf("Raw is not JSON: %q", ev.Raw)
	}
}

func FuzzDecodeLokiPage(f *testing.F) {
	f.Add([]byte(`{"status":"success","data":{"resultType":"streams","result":[{"stream":{"job":"falco","rule":"R","priority":"Warning"},"values":[["1710891602391885178","{\"rule\":\"R\",\"priority\":\"Warning\",\"output\":\"x\",\"time\":\"2024-03-19T23:40:02Z\"}"],["1710891602391885179","text line"]]},{"stream":{"a":"b"},"values":[["5","x",{"trace_id":"1"}]]}]}}`))
	f.Add([]byte(`{"status":"error","error":"parse error"}`))
	f.Add([]byte(`{"status":"success","data":{"resultType":"matrix","result":[]}}`))
	f.Add([]byte(`{"status":"success","data":{"resultType":"streams","result":[{"stream":{},"values":[["-1","x"]]}]}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		page, err := decodeLokiPage(body)
		if err != nil {
			return
		}
		rr := recordReader{maxLine: 1 << 16}
		for i, e := range page.entries {
			if i > 0 && e.ts < page.entries[i-1].ts {
				t.Fatalf("entries out of time order")
			}
			if e.stream < 0 || e.stream >= len(page.streams) || e.ts < 0 {
				t.Fatalf("entry %+v", e)
			}
			st := &page.streams[e.stream]
			var ev *event.Event
			if jsonObject([]byte(e.line)) {
				ev, err = rr.line([]byte(e.line), st.name, e.ts)
			} else {
				ev, err = rr.record(st.labels, e.line, st.name, e.ts)
				if err != nil {
					t.Fatalf("a rebuilt record is always parsable: %v (labels %v line %q)", err, st.labels, e.line)
				}
			}
			checkEvent(t, ev, err)
		}
	})
}

func FuzzVictoriaLogsRow(f *testing.F) {
	f.Add([]byte(`{"_msg":"23:40:02Z: Notice shell (user=root)","_stream":"{hostname=\"h\",rule=\"Terminal shell in container\"}","_stream_id":"00","_time":"2024-03-19T23:40:02.391885178Z","hostname":"h","output_fields.proc.cmdline":"bash","output_fields.container.id":"3ad7","priority":"Notice","rule":"Terminal shell in container","tags":"[\"container\",\"T1059\"]"}`))
	f.Add([]byte(`{"_msg":"{\"Event\":{\"System\":{\"EventID\":4625,\"Computer\":\"dc\",\"Channel\":\"Security\",\"EventRecordID\":7}}}","_time":"2025-06-01T12:00:00Z"}`))
	f.Add([]byte(`{"_msg":"missing _msg field; see docs","_time":"2025-06-01T12:00:00Z","winlog.event_data.Image":"a.exe","winlog.event_data":"x","a.b.c":"1","a.b":"2","a":"3"}`))
	f.Add([]byte(`{"_time":"yesterday"}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		var row vlogsRow
		if err := row.decode(line); err != nil {
			if !strings.Contains(err.Error(), "victorialogs row") {
				t.Fatalf("error without context: %v", err)
			}
			return
		}
		rr := recordReader{maxLine: 1 << 20}
		ev, err := row.event(&rr)
		if err != nil && !jsonObject([]byte(row.msg)) && len(line) < 1<<19 {
			t.Fatalf("a rebuilt row is always parsable: %v", err)
		}
		checkEvent(t, ev, err)
	})
}

func FuzzDecodeHits(f *testing.F) {
	f.Add([]byte(`{"_scroll_id":"abc","_shards":{"failed":0},"hits":{"total":{"value":2},"hits":[{"_index":"ts","_id":"x1","_score":null,"_source":{"message":"Failed password for root from 203.0.113.5 port 22 ssh2","datetime":"2024-03-19T23:21:04.000Z"},"sort":[1]},{"_index":"ts","_id":7,"_source":{}}]}}`))
	f.Add([]byte(`{"hits":{"hits":[1]}}`))
	f.Add([]byte(`{"_shards":{"failed":1,"failures":[{"reason":"x"}]},"hits":{"hits":[]}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		page, err := decodeHits(body)
		if err != nil {
			return
		}
		rr := recordReader{maxLine: 1 << 20}
		for _, h := range page.hits {
			ev, err := rr.line([]byte(h.Raw), "idx", 0)
			checkEvent(t, ev, err)
			ids := 0
			h.ForEach(func(k, _ gjson.Result) bool {
				if k.Str == "_id" {
					ids++
				}
				return true
			})
			if err == nil && ids == 1 { // a repeated key has no agreed meaning
				if id := h.Get("_id"); id.Type == gjson.String && id.Str != "" && ev.ID != id.Str {
					t.Fatalf("hit _id %q became id %q", id.Str, ev.ID)
				}
			}
		}
	})
}

// Rebuilding a record from any labels, message and time gives valid JSON
// that keeps every value.
func FuzzRebuildRecord(f *testing.F) {
	f.Add("rule", "Terminal shell", "priority", "Notice", "tags", "a,b", "output_fields.proc.cmdline", "bash -i", "shell spawned", int64(1710891602391885178))
	f.Add("a.b", "1", "a", "2", "a.b.c", "3", "x..y", "[1,2]", "", int64(0))
	f.Add("winlog.event_data.Image", "c:\\x.exe", "winlog.channel", "Security", "time", "2024-01-01T00:00:00Z", "\xff", "{\"k\":1}", "m\n", int64(-5))
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2, k3, v3, k4, v4, msg string, ts int64) {
		fields := []field{{k1, v1}, {k2, v2}, {k3, v3}, {k4, v4}}
		var tree fieldTree
		b := appendRecord(nil, &tree, fields, msg, ts)
		if !json.Valid(b) {
			t.Fatalf("invalid JSON %q", b)
		}
		rr := recordReader{maxLine: 1 << 20}
		ev, err := rr.record(fields, msg, "fuzz", ts)
		if err != nil {
			t.Fatalf("rebuilt record refused: %v: %s", err, b)
		}
		checkEvent(t, ev, err)
	})
}
