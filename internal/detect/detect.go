// Package detect runs loupe's built-in detection rules over events and emits
// detections mapped to MITRE ATT&CK. Correlation state is bounded.
package detect

import (
	"github.com/loupe-sec/loupe/internal/event"
	"github.com/loupe-sec/loupe/internal/finding"
)

// Detection is one rule hit, ready for reasoning.
type Detection struct {
	Rule       finding.Rule        // attribution: id, title, author, link, level
	Tactic     string              // ATT&CK tactic name ("Credential Access")
	TacticID   string              // TA0006
	Techniques []finding.Technique // resolved through the embedded ATT&CK table
	Priority   finding.Priority
	Source     string // "rule", "correlation" or "falco"

	Event   *event.Event       // the event that made the detection conclusive
	Related []finding.Evidence // earlier supporting events, oldest first (bounded)
	Count   int64              // events the detection covers (1 for single-event rules)

	// Key groups identical conclusions (same rule, host and observation).
	Key string
	// What is the specific observation composed from the event, a clause
	// such as `installed service "PSEXESVC" running C:\Windows\PSEXESVC.exe`.
	What string
}

// Options tune detection.
type Options struct {
	// MaxTracked bounds correlation state (keys per correlation). 0 = 100000.
	MaxTracked int
}

// Engine holds compiled rules and bounded correlation state. Not safe for
// concurrent use; use one Engine per stream.
type Engine struct{}

// New returns an engine with the built-in rules.
func New(opt Options) *Engine { panic("TODO") }

// Observe tests ev against the rules and calls emit for each detection.
func (e *Engine) Observe(ev *event.Event, emit func(Detection)) { panic("TODO") }

// Flush emits what correlations still hold at end of input.
func (e *Engine) Flush(emit func(Detection)) { panic("TODO") }
