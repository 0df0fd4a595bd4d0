package jobs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/loupe-sec/loupe/internal/pipeline"
)

// Options are the analysis options of an investigation, stored as its
// Options JSON. Zero fields take the manager's defaults.
type Options struct {
	MaxEvidence   int    `json:"max_evidence,omitempty"`   // events linked to one conclusion, ≤ 100
	MaxGroups     int    `json:"max_groups,omitempty"`     // repeated-conclusion groups held, ≤ 1,000,000
	MaxTracked    int    `json:"max_tracked,omitempty"`    // correlation keys held, ≤ 10,000,000
	FailThreshold int    `json:"fail_threshold,omitempty"` // failed logons that make a brute force
	FailWindow    string `json:"fail_window,omitempty"`    // brute-force window, a Go duration ("5m")
	// Origin is "cli" for runs of loupe analyze --store: no server owns
	// them, so a server only fails them as interrupted once they have not
	// committed for a while (see StaleAfter).
	Origin string `json:"origin,omitempty"`
}

// Limits on Options, so one request cannot make a job hold unbounded state.
const (
	maxEvidenceLimit = 100
	maxGroupsLimit   = 1_000_000
	maxTrackedLimit  = 10_000_000
)

// ParseOptions reads investigation options strictly: unknown keys and
// out-of-range values are errors. Empty input is the zero Options.
func ParseOptions(raw json.RawMessage) (Options, error) {
	var o Options
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return o, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&o); err != nil {
		return o, fmt.Errorf("options: %w", err)
	}
	check := func(name string, v, limit int) error {
		if v < 0 || v > limit {
			return fmt.Errorf("options: %s = %d, want 0..%d", name, v, limit)
		}
		return nil
	}
	if err := check("max_evidence", o.MaxEvidence, maxEvidenceLimit); err != nil {
		return o, err
	}
	if err := check("max_groups", o.MaxGroups, maxGroupsLimit); err != nil {
		return o, err
	}
	if err := check("max_tracked", o.MaxTracked, maxTrackedLimit); err != nil {
		return o, err
	}
	if err := check("fail_threshold", o.FailThreshold, 1_000_000); err != nil {
		return o, err
	}
	if o.FailWindow != "" {
		d, err := time.ParseDuration(o.FailWindow)
		if err != nil || d <= 0 {
			return o, fmt.Errorf("options: fail_window %q is not a positive duration", o.FailWindow)
		}
	}
	switch o.Origin {
	case "", "cli", "api":
	default:
		return o, fmt.Errorf("options: origin %q is not cli or api", o.Origin)
	}
	return o, nil
}

// apply lays o over base.
func (o Options) apply(base pipeline.Options) pipeline.Options {
	if o.MaxEvidence > 0 {
		base.Reason.MaxEvidence = o.MaxEvidence
	}
	if o.MaxGroups > 0 {
		base.Reason.MaxGroups = o.MaxGroups
	}
	if o.MaxTracked > 0 {
		base.Detect.MaxTracked = o.MaxTracked
	}
	if o.FailThreshold > 0 {
		base.Detect.FailThreshold = o.FailThreshold
	}
	if d, err := time.ParseDuration(o.FailWindow); err == nil && d > 0 {
		base.Detect.FailWindow = d
	}
	return base
}
