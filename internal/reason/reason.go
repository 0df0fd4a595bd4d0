// Package reason turns detections into findings: per ATT&CK tactic a
// DFIQ-style investigative question, and conclusions composed from evidence.
package reason

import (
	"github.com/loupe-sec/loupe/internal/detect"
	"github.com/loupe-sec/loupe/internal/finding"
)

// Options tune reasoning.
type Options struct {
	// MaxEvidence caps the events linked to one conclusion. 0 = 5.
	MaxEvidence int
	// MaxGroups bounds the repeated-conclusion groups held. 0 = 10000.
	MaxGroups int
}

// Reasoner is not safe for concurrent use; use one per stream.
type Reasoner struct{}

func New(opt Options) *Reasoner { panic("TODO") }

// Add takes one detection and emits findings as soon as they are conclusive.
func (r *Reasoner) Add(d detect.Detection, emit func(*finding.Finding)) { panic("TODO") }

// Flush emits what is held at end of input (repeat counts).
func (r *Reasoner) Flush(emit func(*finding.Finding)) { panic("TODO") }
