// Package finding defines Finding, the one result type of loupe: an
// investigative question (DFIQ style) with a conclusion that points back at
// the exact events that support it.
package finding

import (
	"fmt"
	"strings"
	"time"
)

// Priority orders findings by how urgently an analyst should look.
type Priority uint8

const (
	Info Priority = iota
	Low
	Medium
	High
	Critical
)

var priorityNames = [...]string{"info", "low", "medium", "high", "critical"}

func (p Priority) String() string {
	if int(p) < len(priorityNames) {
		return priorityNames[p]
	}
	return "info"
}

// Timesketch maps the priority onto the three values Timesketch accepts.
func (p Priority) Timesketch() string {
	switch {
	case p >= High:
		return "high"
	case p == Medium:
		return "medium"
	}
	return "low"
}

// ParsePriority reads a priority name; it also accepts Falco and syslog
// severities (emergency, alert, error, warning, notice, informational, debug)
// and Sigma levels.
func ParsePriority(s string) (Priority, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "info", "informational", "debug", "":
		return Info, nil
	case "low", "notice":
		return Low, nil
	case "medium", "warning", "warn":
		return Medium, nil
	case "high", "error", "err":
		return High, nil
	case "critical", "crit", "alert", "emergency", "emerg":
		return Critical, nil
	}
	return Info, fmt.Errorf("unknown priority %q (want info, low, medium, high or critical)", s)
}

func (p Priority) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

func (p *Priority) UnmarshalText(b []byte) error {
	v, err := ParsePriority(string(b))
	*p = v
	return err
}

// Technique is one MITRE ATT&CK technique or sub-technique.
type Technique struct {
	ID   string `json:"id"`   // T1110.001
	Name string `json:"name"` // Brute Force: Password Guessing
}

// Rule attributes a finding to the detection that produced it. Third-party
// rules (Sigma, DRL 1.1) must always be shown with title, id, author and link.
type Rule struct {
	ID     string `json:"id"`
	Title  string `json:"title"`
	Author string `json:"author,omitempty"`
	Link   string `json:"link,omitempty"`
	Level  string `json:"level,omitempty"`
	Status string `json:"status,omitempty"` // Sigma rule status (stable, test, experimental, ...)
}

// Evidence is one event a conclusion points at.
type Evidence struct {
	RecordID string    `json:"record_id"`
	Index    string    `json:"_index,omitempty"`
	Line     int64     `json:"line,omitempty"`
	Time     time.Time `json:"time,omitzero"`
	Host     string    `json:"host,omitempty"`
	User     string    `json:"user,omitempty"`
	Summary  string    `json:"summary,omitempty"`
}

// Finding is an answered investigative question.
type Finding struct {
	ID         string      `json:"id"`
	Tactic     string      `json:"tactic"`    // ATT&CK tactic name, e.g. "Persistence"
	TacticID   string      `json:"tactic_id"` // TA0003
	Techniques []Technique `json:"techniques,omitempty"`
	Question   string      `json:"question"`
	Conclusion string      `json:"conclusion"`
	Priority   Priority    `json:"priority"`
	Rule       Rule        `json:"rule"`
	Source     string      `json:"source"` // "rule", "correlation", "falco", later "sigma", "llm"
	Host       string      `json:"host,omitempty"`
	User       string      `json:"user,omitempty"`
	First      time.Time   `json:"first,omitzero"`
	Last       time.Time   `json:"last,omitzero"`
	Count      int64       `json:"count"` // events behind the conclusion, may exceed len(Evidence)
	Evidence   []Evidence  `json:"evidence"`
	// LLM is set when a language model took part, or was meant to and
	// could not: nil for a purely offline run.
	LLM *LLM `json:"llm,omitempty"`
}

// LLM records a language model's part in a finding. A finding whose
// conclusion the model wrote has Source "llm"; an offline finding the model
// confirmed keeps its own Source and carries the model's words in Note. When
// the model's part is missing, Fallback says why (provider down, timed out,
// invalid answer, over budget) and the offline conclusion stands.
type LLM struct {
	Provider      string `json:"provider,omitempty"` // ollama, openai or anthropic
	Model         string `json:"model,omitempty"`
	PromptVersion string `json:"prompt_version,omitempty"`
	Note          string `json:"note,omitempty"`     // the model's conclusion added to an offline finding
	Fallback      string `json:"fallback,omitempty"` // why no model conclusion is attached
}
