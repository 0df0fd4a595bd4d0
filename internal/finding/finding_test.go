package finding

import (
	"encoding/json"
	"testing"
)

func TestParsePriority(t *testing.T) {
	for in, want := range map[string]Priority{
		"critical": Critical, "Emergency": Critical, "ALERT": Critical, "Error": High, "high": High,
		"Warning": Medium, "medium": Medium, "Notice": Low, "low": Low, "Informational": Info, "debug": Info, "": Info,
	} {
		got, err := ParsePriority(in)
		if err != nil || got != want {
			t.Errorf("ParsePriority(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParsePriority("urgent"); err == nil {
		t.Error("unknown priority accepted")
	}
}

func TestPriorityTimesketchAndJSON(t *testing.T) {
	for p, want := range map[Priority]string{Info: "low", Low: "low", Medium: "medium", High: "high", Critical: "high"} {
		if got := p.Timesketch(); got != want {
			t.Errorf("%v.Timesketch() = %q, want %q", p, got, want)
		}
	}
	b, _ := json.Marshal(struct{ P Priority }{High})
	if string(b) != `{"P":"high"}` {
		t.Errorf("marshal = %s", b)
	}
	var v struct{ P Priority }
	if err := json.Unmarshal([]byte(`{"P":"critical"}`), &v); err != nil || v.P != Critical {
		t.Errorf("unmarshal = %v, %v", v.P, err)
	}
	if err := json.Unmarshal([]byte(`{"P":"bogus"}`), &v); err == nil {
		t.Error("bogus priority unmarshalled")
	}
}
