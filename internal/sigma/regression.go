package sigma

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/loupe-sec/loupe/internal/event"
	"github.com/loupe-sec/loupe/internal/source"
	"gopkg.in/yaml.v3"
)

// RegressionCase is one regression sample replayed against its rule.
type RegressionCase struct {
	RuleID    string `json:"rule_id"`
	RuleTitle string `json:"rule_title"`
	Sample    string `json:"sample"`               // the JSON rendering of the sample
	Want      int    `json:"want"`                 // match_count; 0 = at least one
	Events    int    `json:"events"`               // events in the sample
	Matched   int    `json:"matched"`              // events the rule matched
	NotLoaded string `json:"not_loaded,omitempty"` // why the rule is not in the set, when it is not
}

// Passed reports whether the rule matched as often as the sample says.
func (c RegressionCase) Passed() bool {
	if c.NotLoaded != "" {
		return false
	}
	if c.Want > 0 {
		return c.Matched == c.Want
	}
	return c.Matched > 0
}

// Why says how a case failed; "" when it passed.
func (c RegressionCase) Why() string {
	switch {
	case c.Passed():
		return ""
	case c.NotLoaded != "":
		return "rule not loaded: " + c.NotLoaded
	case c.Want > 0:
		return fmt.Sprintf("%d of %d events matched, want %d", c.Matched, c.Events, c.Want)
	}
	return fmt.Sprintf("none of %d events matched", c.Events)
}

// RegressionReport is what RunRegression found.
type RegressionReport struct {
	Cases []RegressionCase `json:"cases"`
	// Skipped names samples that could not be replayed: the rule is in
	// no file of the set, or the sample has no JSON rendering.
	Skipped []string `json:"skipped,omitempty"`
}

// Passed counts the cases that passed.
func (r RegressionReport) Passed() int {
	n := 0
	for _, c := range r.Cases {
		if c.Passed() {
			n++
		}
	}
	return n
}

// RunRegression replays regression samples laid out as in the SigmaHQ
// repository's regression_data/: each info.yml under dir names its rule
// (rule_metadata) and its samples (regression_tests_info: path of the
// .evtx, match_count), and the JSON rendering of each .evtx lies beside it
// (the same name, .json: one or more JSON objects or arrays of them). Each
// sample's rule must match as many of its events as match_count says, or
// at least one when it says nothing. Logsources count: a sample from
// another channel than its rule's does not match.
func RunRegression(rs *Ruleset, dir string) (RegressionReport, error) {
	var rep RegressionReport
	x := rs.NewEngine()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "info.yml" {
			return err
		}
		var info struct {
			Rules []struct{ ID, Title string } `yaml:"rule_metadata"`
			Tests []struct {
				Count int    `yaml:"match_count"`
				Path  string `yaml:"path"`
			} `yaml:"regression_tests_info"`
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := yaml.Unmarshal(b, &info); err != nil || len(info.Rules) == 0 {
			rep.Skipped = append(rep.Skipped, p+": not a regression info file")
			return nil
		}
		meta := info.Rules[0]
		r := rs.Rule(meta.ID)
		why := ""
		if r == nil {
			for _, pr := range rs.Problems {
				if pr.ID == meta.ID {
					why = pr.Reason
				}
			}
		}
		for _, tc := range info.Tests {
			// info.yml files write the path with either separator.
			base := filepath.Base(strings.ReplaceAll(tc.Path, `\`, "/"))
			sample := filepath.Join(filepath.Dir(p), strings.TrimSuffix(base, filepath.Ext(base))+".json")
			if r == nil && why == "" {
				rep.Skipped = append(rep.Skipped, sample+": rule "+meta.ID+" is not in the rule set")
				continue
			}
			evs, err := regressionEvents(sample)
			if errors.Is(err, fs.ErrNotExist) {
				rep.Skipped = append(rep.Skipped, sample+": no JSON rendering of the sample")
				continue
			}
			if err != nil {
				rep.Skipped = append(rep.Skipped, sample+": "+err.Error())
				continue
			}
			c := RegressionCase{RuleID: meta.ID, RuleTitle: meta.Title, Sample: sample, Want: tc.Count, Events: len(evs), NotLoaded: why}
			for _, ev := range evs {
				if r != nil && x.Match(r, ev) {
					c.Matched++
				}
			}
			rep.Cases = append(rep.Cases, c)
		}
		return nil
	})
	return rep, err
}

// regressionEvents reads a sample's JSON rendering.
func regressionEvents(path string) ([]*event.Event, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	dec := json.NewDecoder(f)
	var out []*event.Event
	for i := int64(1); ; i++ {
		var v json.RawMessage
		if err := dec.Decode(&v); err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("value %d: %w", i, err)
		}
		items := []json.RawMessage{v}
		if len(v) > 0 && v[0] == '[' {
			if err := json.Unmarshal(v, &items); err != nil {
				return nil, fmt.Errorf("value %d: %w", i, err)
			}
		}
		for _, it := range items {
			var line bytes.Buffer
			if err := json.Compact(&line, it); err != nil {
				return nil, fmt.Errorf("value %d: %w", i, err)
			}
			ev, err := source.ParseLine(line.Bytes(), i, source.Options{Name: filepath.Base(path)})
			if err != nil {
				return nil, err
			}
			out = append(out, ev)
		}
	}
	return out, nil
}
