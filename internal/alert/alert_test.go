package alert

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseForms(t *testing.T) {
	cases := []struct {
		name, body string
		want       Alert
	}{
		{"documented", `{"rule":"Write below etc","output":"File below /etc opened (user=root file=/etc/x)","priority":"Warning"}`,
			Alert{Rule: "Write below etc", Output: "File below /etc opened (user=root file=/etc/x)", Priority: "Warning"}},
		{"alert string", `{"alert":"Shell spawned (user=bob)","rule":"Terminal shell in container","priority":"Notice","hostname":"web-1"}`,
			Alert{Rule: "Terminal shell in container", Output: "Shell spawned (user=bob)", Priority: "Notice", Hostname: "web-1"}},
		{"alert object", `{"alert":{"rule":"Terminal shell in container","output":"x","priority":"Notice","hostname":"n1","source":"syscall","time":"2024-05-01T10:00:00.5Z","tags":["T1059","mitre_execution"],"output_fields":{"proc.name":"bash","proc.pid":42,"container.privileged":true,"fd.name":null}}}`,
			Alert{Rule: "Terminal shell in container", Output: "x", Priority: "Notice", Hostname: "n1", Source: "syscall",
				Time: time.Date(2024, 5, 1, 10, 0, 0, 5e8, time.UTC), Tags: []string{"T1059", "mitre_execution"},
				OutputFields: map[string]string{"proc.name": "bash", "proc.pid": "42", "container.privileged": "true"}}},
		{"top level wins", `{"rule":"Top","alert":{"rule":"Inner","output":"o"}}`, Alert{Rule: "Top", Output: "o"}},
		{"hostname from fields", `{"rule":"r","output_fields":{"hostname":"h"}}`, Alert{Rule: "r", Hostname: "h", OutputFields: map[string]string{"hostname": "h"}}},
	}
	for _, c := range cases {
		got, err := Parse([]byte(c.body))
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if !got.Time.Equal(c.want.Time) || got.Rule != c.want.Rule || got.Output != c.want.Output || got.Priority != c.want.Priority ||
			got.Hostname != c.want.Hostname || got.Source != c.want.Source || strings.Join(got.Tags, ",") != strings.Join(c.want.Tags, ",") ||
			len(got.OutputFields) != len(c.want.OutputFields) {
			t.Errorf("%s: got %+v want %+v", c.name, got, c.want)
		}
		for k, v := range c.want.OutputFields {
			if got.OutputFields[k] != v {
				t.Errorf("%s: field %s = %q want %q", c.name, k, got.OutputFields[k], v)
			}
		}
	}
}

func TestParseRejects(t *testing.T) {
	for _, body := range []string{``, `{`, `[]`, `{"priority":"Warning"}`, `{"rule":"Unknown","output":" "}`,
		`{"alert":42,"rule":"r"}`, `{"rule":"r"} {"rule":"s"}`, `{"rule":"r","time":"yesterday"}`} {
		if _, err := Parse([]byte(body)); err == nil {
			t.Errorf("Parse(%q) accepted", body)
		}
	}
	if _, err := Parse([]byte(`{"priority":"x"}`)); !errors.Is(err, ErrEmpty) {
		t.Errorf("empty alert: err = %v, want ErrEmpty", err)
	}
}

func TestFieldFromOutput(t *testing.T) {
	a := Alert{Output: "17:20:42.1: Notice A shell was spawned in a container with an attached terminal (user=root user_loginuid=-1 k8s.ns=prod k8s.pod=web-1 container=abc123 shell=bash parent=runc cmdline=bash -il terminal=34816 container_id=abc123 image=nginx)",
		OutputFields: map[string]string{"proc.name": "bash", "fd.name": "<NA>"}}
	for _, c := range [][2]string{{"user", "root"}, {"k8s.ns", "prod"}, {"cmdline", "bash -il"}, {"parent", "runc"}, {"image", "nginx"}, {"proc.name", "bash"}, {"fd.name", ""}, {"loginuid", ""}} {
		if got := a.Field(c[0]); got != c[1] {
			t.Errorf("Field(%s) = %q, want %q", c[0], got, c[1])
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"rule":"Write below etc","output":"File below /etc opened (user=root file=/etc/x)","priority":"Warning"}`))
	f.Add([]byte(`{"alert":{"rule":"r","output_fields":{"a":1,"b":[1,2]},"time":"2024-05-01T10:00:00Z"}}`))
	f.Add([]byte(`{"alert":"x (user= command=a b=c)"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		a, err := Parse(body)
		if err != nil {
			return
		}
		if a.Validate() != nil {
			t.Fatalf("Parse returned an invalid alert %+v", a)
		}
		for _, k := range []string{"user", "command", "b", "proc.name"} {
			_ = a.Field(k)
		}
		_ = Normalize(a.Output)
		an, err := Offline{}.Analyze(t.Context(), a, Context{})
		if err != nil {
			t.Fatalf("offline analysis of a valid alert failed: %v", err)
		}
		if err := an.Validate(); err != nil {
			t.Fatalf("offline analysis invalid: %v", err)
		}
	})
}
