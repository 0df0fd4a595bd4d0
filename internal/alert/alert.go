// Package alert analyses a single Falco alert the way SIB (SIEM in a Box)
// does when an analyst clicks "Analyze with AI" in Grafana: what the attacker
// is doing, the ATT&CK tactic and technique, severity, confidence and impact,
// mitigations and how likely the alert is a false positive.
//
// The Analyzer interface hides who does the analysis. Offline, the default,
// works from loupe's own knowledge of Falco rules and ATT&CK and never leaves
// the process; language-model analyzers plug in behind the same interface and
// receive the alert only as an obfuscated prompt (see Prompt). Service ties an
// analyzer to the Cache, obfuscation and related-event lookup. There is no HTTP
// here; internal/server serves it.
package alert

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Alert is one Falco alert as SIB's analysis API receives it.
type Alert struct {
	Rule         string            `json:"rule"`
	Output       string            `json:"output"`
	Priority     string            `json:"priority,omitempty"`
	Hostname     string            `json:"hostname,omitempty"`
	Source       string            `json:"source,omitempty"`
	Time         time.Time         `json:"time,omitzero"`
	Tags         []string          `json:"tags,omitempty"`
	OutputFields map[string]string `json:"output_fields,omitempty"`
}

// ErrEmpty is returned for an alert without rule and output.
var ErrEmpty = errors.New("alert has neither rule nor output")

// wire is the request body. SIB's API documents {"rule","output","priority"};
// its code reads {"alert": "<output text>", "rule", "priority", "hostname"};
// a Falco or falcosidekick event may also come whole under "alert".
type wire struct {
	Rule         string          `json:"rule"`
	Output       string          `json:"output"`
	Priority     string          `json:"priority"`
	Hostname     string          `json:"hostname"`
	Source       string          `json:"source"`
	Time         string          `json:"time"`
	Tags         []string        `json:"tags"`
	OutputFields map[string]any  `json:"output_fields"`
	Alert        json.RawMessage `json:"alert"`
}

// Parse reads a request body in any of the accepted forms. Fields given at
// the top level win over the same fields inside an "alert" object.
func Parse(body []byte) (Alert, error) {
	var w wire
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&w); err != nil {
		return Alert{}, fmt.Errorf("parse alert: %w", err)
	}
	if dec.More() {
		return Alert{}, errors.New("parse alert: trailing data after the JSON object")
	}
	a, err := w.alert()
	if err != nil {
		return Alert{}, err
	}
	if raw := bytes.TrimSpace(w.Alert); len(raw) > 0 && !bytes.Equal(raw, []byte("null")) {
		switch raw[0] {
		case '"':
			var out string
			if err := json.Unmarshal(raw, &out); err != nil {
				return Alert{}, fmt.Errorf("parse alert: %w", err)
			}
			if a.Output == "" {
				a.Output = out
			}
		case '{':
			var inner wire
			if err := json.Unmarshal(raw, &inner); err != nil {
				return Alert{}, fmt.Errorf("parse alert: field alert: %w", err)
			}
			in, err := inner.alert()
			if err != nil {
				return Alert{}, err
			}
			a = merge(a, in)
		default:
			return Alert{}, errors.New("parse alert: field alert must be a string or an object")
		}
	}
	a.normalize()
	if err := a.Validate(); err != nil {
		return Alert{}, err
	}
	return a, nil
}

func (w wire) alert() (Alert, error) {
	a := Alert{Rule: w.Rule, Output: w.Output, Priority: w.Priority, Hostname: w.Hostname,
		Source: w.Source, Tags: w.Tags}
	if w.Time != "" {
		t, err := time.Parse(time.RFC3339Nano, w.Time)
		if err != nil {
			return Alert{}, fmt.Errorf("parse alert: time: %w", err)
		}
		a.Time = t
	}
	if len(w.OutputFields) > 0 {
		a.OutputFields = make(map[string]string, len(w.OutputFields))
		for k, v := range w.OutputFields {
			switch v := v.(type) {
			case nil:
			case string:
				a.OutputFields[k] = v
			default:
				b, _ := json.Marshal(v)
				a.OutputFields[k] = string(b)
			}
		}
	}
	return a, nil
}

// merge fills the empty fields of top from inner.
func merge(top, inner Alert) Alert {
	if top.Rule == "" {
		top.Rule = inner.Rule
	}
	if top.Output == "" {
		top.Output = inner.Output
	}
	if top.Priority == "" {
		top.Priority = inner.Priority
	}
	if top.Hostname == "" {
		top.Hostname = inner.Hostname
	}
	if top.Source == "" {
		top.Source = inner.Source
	}
	if top.Time.IsZero() {
		top.Time = inner.Time
	}
	if len(top.Tags) == 0 {
		top.Tags = inner.Tags
	}
	if len(top.OutputFields) == 0 {
		top.OutputFields = inner.OutputFields
	}
	return top
}

// normalize trims the alert and takes the host name from the output fields
// when it was not given.
func (a *Alert) normalize() {
	a.Rule = strings.TrimSpace(a.Rule)
	a.Output = strings.TrimSpace(a.Output)
	a.Priority = strings.TrimSpace(a.Priority)
	a.Hostname = strings.TrimSpace(a.Hostname)
	if a.Hostname == "" {
		a.Hostname = a.OutputFields["hostname"]
	}
}

// Validate reports whether the alert can be analysed: it needs a rule or an
// output, and SIB's "Unknown" placeholders count as missing.
func (a Alert) Validate() error {
	if blank(a.Rule) && blank(a.Output) {
		return ErrEmpty
	}
	return nil
}

func blank(s string) bool {
	s = strings.TrimSpace(s)
	return s == "" || strings.EqualFold(s, "unknown")
}

// Field returns an output field: from OutputFields, else parsed from the
// "key=value" list in the output text. Keys are Falco's (proc.cmdline) or the
// short forms of the default output format (command, user, container_id).
func (a Alert) Field(names ...string) string {
	for _, n := range names {
		if v, ok := a.OutputFields[n]; ok && v != "" && v != "<NA>" {
			return v
		}
	}
	for _, n := range names {
		if v := outputValue(a.Output, n); v != "" && v != "<NA>" {
			return v
		}
	}
	return ""
}

// outputValue finds "key=value" in a Falco output line. A value runs to the
// next " word=" or to the closing parenthesis of the field list, so
// "command=bash -il terminal=34816" gives "bash -il".
func outputValue(out, key string) string {
	for i := 0; ; {
		j := strings.Index(out[i:], key+"=")
		if j < 0 {
			return ""
		}
		j += i
		start := j + len(key) + 1
		if j > 0 && out[j-1] != ' ' && out[j-1] != '(' && out[j-1] != ',' {
			i = start
			continue
		}
		end := len(out)
		for k := start; k < len(out); k++ {
			if out[k] == ')' && (k == len(out)-1 || out[k+1] == ' ') {
				end = k
				break
			}
			if out[k] == ' ' && isKeyAt(out, k+1) {
				end = k
				break
			}
		}
		return strings.TrimSpace(out[start:end])
	}
}

// isKeyAt reports whether a "key=" starts at out[i].
func isKeyAt(out string, i int) bool {
	k := i
	for k < len(out) {
		c := out[k]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '[' || c == ']' {
			k++
			continue
		}
		break
	}
	return k > i && k < len(out) && out[k] == '='
}
