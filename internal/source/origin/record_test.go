package origin

import (
	"testing"
	"time"

	"github.com/loupe-sec/loupe/internal/event"
)

func TestRebuildRecord(t *testing.T) {
	ts := time.Date(2024, 3, 19, 23, 40, 2, 391885178, time.UTC).UnixNano()
	cases := []struct {
		fields []field
		msg    string
		want   string
	}{
		// falcosidekick text line with its labels: a Falco alert.
		{[]field{{"rule", "Terminal shell in container"}, {"priority", "Notice"}, {"tags", "container, shell,T1059"},
			{"output_fields.proc.cmdline", "bash -i"}, {"output_fields.container.id", "3ad7"}}, "A shell was spawned",
			`{"time":"2024-03-19T23:40:02.391885178Z","rule":"Terminal shell in container","priority":"Notice","tags":["container","shell","T1059"],"output_fields":{"proc.cmdline":"bash -i","container.id":"3ad7"},"output":"A shell was spawned"}`},
		// Flattened nesting comes back; JSON text values stay JSON.
		{[]field{{"winlog.event_data.Image", `C:\x.exe`}, {"winlog.channel", "Security"}, {"tags", `["a","b"]`}}, "m",
			`{"time":"2024-03-19T23:40:02.391885178Z","winlog":{"event_data":{"Image":"C:\\x.exe"},"channel":"Security"},"tags":["a","b"],"message":"m"}`},
		// Colliding names lose nothing; a field named time wins over the
		// store's timestamp; odd dots stay one name.
		{[]field{{"a.b.c", "1"}, {"a.b", "2"}, {"a", "3"}, {"time", "x"}, {"x..y", "4"}, {".z", "5"}}, "",
			`{"time":"x","a":"3","a.b.c":"1","a.b":"2","x..y":"4",".z":"5"}`},
	}
	var tree fieldTree
	for _, c := range cases {
		if got := string(appendRecord(nil, &tree, c.fields, c.msg, ts)); got != c.want {
			t.Errorf("\n got  %s\n want %s", got, c.want)
		}
	}
	rr := recordReader{maxLine: 1 << 20}
	ev, err := rr.record(cases[0].fields, cases[0].msg, "test", ts)
	if err != nil || ev.Format != event.FormatFalco || ev.CommandLine != "bash -i" || len(ev.Tags) != 3 || ev.Time.UnixNano() != ts {
		t.Errorf("falco: %+v %v", ev, err)
	}
}
