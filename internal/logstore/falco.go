package logstore

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/tidwall/gjson"
)

// FromFalco converts one Falco JSON alert (as Falco's json_output writes it)
// into an Event, e.g. to Push a corpus into a store.
func FromFalco(line []byte) (Event, error) {
	var ev Event
	if !fillFromJSON(&ev, line) {
		return ev, fmt.Errorf("logstore: not a Falco JSON alert: %q", excerpt(line))
	}
	if ev.Time.IsZero() {
		return ev, fmt.Errorf("logstore: Falco alert without a valid time: %q", excerpt(line))
	}
	if s := gjson.GetBytes(line, "source"); s.Type == gjson.String {
		ev.Labels = map[string]string{"source": s.Str}
	}
	if t := gjson.GetBytes(line, "tags"); t.IsArray() {
		var tags []string
		for _, x := range t.Array() {
			tags = append(tags, x.String())
		}
		if len(tags) > 0 {
			if ev.Labels == nil {
				ev.Labels = map[string]string{}
			}
			ev.Labels["tags"] = strings.Join(tags, ",")
		}
	}
	return ev, nil
}

// fillFromJSON fills ev from a Falco JSON alert. Fields already set in ev
// (from labels) are kept. It reports false when line is not a JSON object.
func fillFromJSON(ev *Event, line []byte) bool {
	if len(line) == 0 || line[0] != '{' || !gjson.ValidBytes(line) {
		return false
	}
	r := gjson.ParseBytes(line)
	if !r.IsObject() {
		return false
	}
	setIfEmpty(&ev.Host, r.Get("hostname"))
	setIfEmpty(&ev.Rule, r.Get("rule"))
	setIfEmpty(&ev.Priority, r.Get("priority"))
	setIfEmpty(&ev.Message, r.Get("output"))
	setIfEmpty(&ev.ContainerID, r.Get(`output_fields.container\.id`))
	if ev.Time.IsZero() {
		if t := r.Get("time"); t.Type == gjson.String {
			if tt, err := time.Parse(time.RFC3339Nano, t.Str); err == nil {
				ev.Time = tt
			}
		}
	}
	if ev.ContainerID == "" {
		ev.ContainerID = containerIDFromText(ev.Message)
	}
	ev.Raw = json.RawMessage(append([]byte(nil), line...))
	return true
}

// fillFromLine fills ev from a stored log line: a Falco JSON alert, or
// Falco's output text as falcosidekick ships it.
func fillFromLine(ev *Event, line string) {
	if fillFromJSON(ev, []byte(line)) {
		return
	}
	if ev.Message == "" {
		ev.Message = line
	}
	if ev.ContainerID == "" {
		ev.ContainerID = containerIDFromText(line)
	}
}

func setIfEmpty(dst *string, r gjson.Result) {
	if *dst == "" && r.Type == gjson.String {
		*dst = r.Str
	}
}

// containerIDFromText finds "container_id=ID" in Falco output text, as the
// default Falco rules write it.
func containerIDFromText(s string) string {
	const key = "container_id="
	for i := 0; ; {
		j := strings.Index(s[i:], key)
		if j < 0 {
			return ""
		}
		j += i
		// The key must start a word, not end one ("xcontainer_id=").
		if j > 0 && isWordByte(s[j-1]) {
			i = j + len(key)
			continue
		}
		v := s[j+len(key):]
		if k := strings.IndexAny(v, " \t\r\n),;"); k >= 0 {
			v = v[:k]
		}
		return v
	}
}

func isWordByte(c byte) bool {
	return c == '_' || c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}
