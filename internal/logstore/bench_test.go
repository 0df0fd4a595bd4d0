package logstore

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"
)

const benchRows = 1000

// BenchmarkParseLokiResponse decodes a query_range page of Falco text lines
// and turns it into Events.
func BenchmarkParseLokiResponse(b *testing.B) {
	type stream struct {
		Stream map[string]string `json:"stream"`
		Values [][2]string       `json:"values"`
	}
	s := stream{Stream: map[string]string{"hostname": "ip-10-0-1-23.eu-west-1.compute.internal", "rule": "Terminal shell in container", "priority": "Notice", "source": "syscall", "tags": "T1059,container,shell"}}
	at := time.Date(2024, 3, 19, 23, 40, 0, 0, time.UTC).UnixNano()
	for i := 0; i < benchRows; i++ {
		s.Values = append(s.Values, [2]string{strconv.FormatInt(at+int64(i), 10),
			"23:40:02.391885178Z: Notice A shell was spawned in a container with an attached terminal (evt_type=execve user=root process=bash parent=runc command=bash container_id=3ad7b26ded6d container_name=payments-api k8s_ns=payments)"})
	}
	body, _ := json.Marshal(map[string]any{"status": "success", "data": map[string]any{"resultType": "streams", "result": []stream{s}}})
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		es, err := parseLokiResponse(body)
		if err != nil {
			b.Fatal(err)
		}
		for i := range es {
			if ev := es[i].event(); ev.ContainerID == "" {
				b.Fatal("no container id")
			}
		}
		n += len(es)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkVLogsReadRows decodes a VictoriaLogs NDJSON result stream.
func BenchmarkVLogsReadRows(b *testing.B) {
	row := `{"_msg":"23:40:02.391885178Z: Notice A shell was spawned in a container with an attached terminal (evt_type=execve user=root process=bash parent=runc command=bash container_id=3ad7b26ded6d container_name=payments-api k8s_ns=payments)","_stream":"{hostname=\"ip-10-0-1-23\",priority=\"Notice\",rule=\"Terminal shell in container\",source=\"syscall\"}","_stream_id":"00000000000000009e06b0ae2643bac23d2453e18e69602e","_time":"2024-03-19T23:40:02.391885178Z","hostname":"ip-10-0-1-23","priority":"Notice","rule":"Terminal shell in container","source":"syscall","tags":"T1059,container,shell"}` + "\n"
	body := []byte(strings.Repeat(row, benchRows))
	vl := &VictoriaLogs{}
	q := Query{ContainerID: "3ad7b26ded6d"}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		evs, err := vl.readRows(bytes.NewReader(body), MaxLimit, q)
		if err != nil || len(evs) != benchRows {
			b.Fatal(len(evs), err)
		}
		n += len(evs)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}
