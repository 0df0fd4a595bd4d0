package event

import "testing"

func TestFieldAndData(t *testing.T) {
	e := &Event{
		Raw:      []byte(`{"Event":{"EventData":{"ServiceName":"PSEXESVC","a.b":"dotted"}},"output_fields":{"proc.cmdline":"bash -i"}}`),
		DataPath: "Event.EventData",
	}
	if v, ok := e.Data("ServiceName"); !ok || v != "PSEXESVC" {
		t.Errorf("Data(ServiceName) = %q, %v", v, ok)
	}
	if v, ok := e.Data("a.b"); !ok || v != "dotted" {
		t.Errorf("a dotted key must be read as one key: %q, %v", v, ok)
	}
	if _, ok := e.Data("Missing"); ok {
		t.Error("missing field reported present")
	}
	f := &Event{Raw: e.Raw, DataPath: "output_fields"}
	if v, _ := f.Data("proc.cmdline"); v != "bash -i" {
		t.Errorf("Falco field = %q", v)
	}
	if _, ok := (&Event{}).Field("x"); ok {
		t.Error("an event without Raw has no fields")
	}
}

func TestSummary(t *testing.T) {
	cases := []struct {
		e    Event
		want string
	}{
		{Event{CommandLine: "whoami /all", Message: "m"}, "whoami /all"},
		{Event{Message: "Accepted password for root"}, "Accepted password for root"},
		{Event{Channel: "Security", EventID: 4625, TargetUser: "admin", SrcIP: "203.0.113.5", LogonType: 10},
			"Security event 4625: account admin, from 203.0.113.5, logon type 10"},
		{Event{Channel: "System", EventID: 7045, Program: "PSEXESVC"}, "System event 7045: service PSEXESVC"},
		{Event{Channel: "Security", EventID: 1102}, "Security event 1102"},
		{Event{}, ""},
	}
	for _, c := range cases {
		if got := c.e.Summary(); got != c.want {
			t.Errorf("Summary() = %q, want %q", got, c.want)
		}
	}
	if Format(200).String() != "unknown" || FormatEVTX.String() != "evtx" {
		t.Error("format names")
	}
}
