package alert

import (
	"errors"
	"fmt"
	"github.com/loupe-sec/loupe/internal/attack"
	"strings"
	"time"

	"github.com/loupe-sec/loupe/internal/obfuscate"
)

// Severity, confidence and likelihood values. They are always lower case.
var (
	Severities  = []string{"critical", "high", "medium", "low", "info"}
	Confidences = []string{"high", "medium", "low"}
	Likelihoods = []string{"high", "medium", "low"}
)

// Analysis is the answer for one alert, in SIB's documented response shape,
// plus loupe's metadata under "meta".
type Analysis struct {
	AttackVector   string        `json:"attack_vector"`
	MitreAttack    MitreAttack   `json:"mitre_attack"`
	RiskAssessment Risk          `json:"risk_assessment"`
	Mitigations    Mitigations   `json:"mitigations"`
	FalsePositive  FalsePositive `json:"false_positive"`
	Investigate    []string      `json:"investigate,omitempty"` // what to check next
	Summary        string        `json:"summary,omitempty"`
	Meta           Meta          `json:"meta"`
}

// MitreAttack is the ATT&CK mapping.
type MitreAttack struct {
	Tactic        string `json:"tactic"`              // Persistence
	TacticID      string `json:"tactic_id,omitempty"` // TA0003
	Technique     string `json:"technique"`           // T1547.001
	TechniqueName string `json:"technique_name"`
	URL           string `json:"url,omitempty"` // attack.mitre.org page of the technique
}

// Risk is the risk assessment.
type Risk struct {
	Severity   string `json:"severity"`   // critical, high, medium, low, info
	Confidence string `json:"confidence"` // high, medium, low
	Impact     string `json:"impact"`
}

// Mitigations are actions by horizon.
type Mitigations struct {
	Immediate []string `json:"immediate"`
	ShortTerm []string `json:"short_term"`
	LongTerm  []string `json:"long_term"`
}

// FalsePositive is the false-positive assessment.
type FalsePositive struct {
	Likelihood            string   `json:"likelihood"` // high, medium, low
	CommonCauses          []string `json:"common_causes"`
	DistinguishingFactors []string `json:"distinguishing_factors,omitempty"`
}

// Meta says how the analysis was made. It is loupe's addition to SIB's shape.
type Meta struct {
	Provider      string         `json:"provider"` // offline, ollama, openai, anthropic
	Model         string         `json:"model,omitempty"`
	Cached        bool           `json:"cached"`
	DedupCount    int            `json:"dedup_count"` // times this alert (normalised) was analysed or served
	Obfuscation   map[string]int `json:"obfuscation"` // replaced values per kind in the prompt
	RelatedEvents []RelatedEvent `json:"related_events"`
	AnalyzedAt    time.Time      `json:"analyzed_at"`
	PromptVersion string         `json:"prompt_version,omitempty"`
	Fallback      string         `json:"fallback,omitempty"` // why the configured analyzer was not used
}

// RelatedEvent is another log event around the alert, from the log store.
type RelatedEvent struct {
	Time     time.Time `json:"time"`
	Rule     string    `json:"rule,omitempty"`
	Priority string    `json:"priority,omitempty"`
	Hostname string    `json:"hostname,omitempty"`
	Output   string    `json:"output"`
}

// Normalize lower-cases and trims the enumerated values, so that a model
// answering "High" or " Critical" still validates.
func (a *Analysis) Normalize() {
	a.RiskAssessment.Severity = strings.ToLower(strings.TrimSpace(a.RiskAssessment.Severity))
	a.RiskAssessment.Confidence = strings.ToLower(strings.TrimSpace(a.RiskAssessment.Confidence))
	a.FalsePositive.Likelihood = strings.ToLower(strings.TrimSpace(a.FalsePositive.Likelihood))
	a.MitreAttack.Technique = strings.ToUpper(strings.TrimSpace(a.MitreAttack.Technique))
	if a.RiskAssessment.Severity == "informational" {
		a.RiskAssessment.Severity = "info"
	}
}

// Validate checks the enumerated values and that the analysis says something.
func (a Analysis) Validate() error {
	var errs []error
	if strings.TrimSpace(a.AttackVector) == "" {
		errs = append(errs, errors.New("attack_vector is empty"))
	}
	if !oneOf(a.RiskAssessment.Severity, Severities) {
		errs = append(errs, fmt.Errorf("risk_assessment.severity %q is not one of %s", a.RiskAssessment.Severity, strings.Join(Severities, ", ")))
	}
	if !oneOf(a.RiskAssessment.Confidence, Confidences) {
		errs = append(errs, fmt.Errorf("risk_assessment.confidence %q is not one of %s", a.RiskAssessment.Confidence, strings.Join(Confidences, ", ")))
	}
	if !oneOf(a.FalsePositive.Likelihood, Likelihoods) {
		errs = append(errs, fmt.Errorf("false_positive.likelihood %q is not one of %s", a.FalsePositive.Likelihood, strings.Join(Likelihoods, ", ")))
	}
	if t := a.MitreAttack.Technique; t != "" && !attack.IsTechniqueID(t) {
		errs = append(errs, fmt.Errorf("mitre_attack.technique %q is not a technique id like T1059 or T1059.004", t))
	}
	return errors.Join(errs...)
}

func oneOf(v string, set []string) bool {
	for _, s := range set {
		if v == s {
			return true
		}
	}
	return false
}

// Restore puts the real values back into every text of the analysis that a
// model wrote from the obfuscated prompt.
func (a *Analysis) Restore(m *obfuscate.Mapper) {
	if m == nil {
		return
	}
	a.AttackVector = m.Restore(a.AttackVector)
	a.RiskAssessment.Impact = m.Restore(a.RiskAssessment.Impact)
	a.Summary = m.Restore(a.Summary)
	for _, l := range [][]string{a.Mitigations.Immediate, a.Mitigations.ShortTerm, a.Mitigations.LongTerm,
		a.FalsePositive.CommonCauses, a.FalsePositive.DistinguishingFactors, a.Investigate} {
		for i := range l {
			l[i] = m.Restore(l[i])
		}
	}
}

// clone returns a deep copy, so cached analyses are never shared.
func (a Analysis) clone() Analysis {
	c := a
	c.Mitigations.Immediate = cloneStrings(a.Mitigations.Immediate)
	c.Mitigations.ShortTerm = cloneStrings(a.Mitigations.ShortTerm)
	c.Mitigations.LongTerm = cloneStrings(a.Mitigations.LongTerm)
	c.FalsePositive.CommonCauses = cloneStrings(a.FalsePositive.CommonCauses)
	c.FalsePositive.DistinguishingFactors = cloneStrings(a.FalsePositive.DistinguishingFactors)
	c.Investigate = cloneStrings(a.Investigate)
	if a.Meta.Obfuscation != nil {
		c.Meta.Obfuscation = make(map[string]int, len(a.Meta.Obfuscation))
		for k, v := range a.Meta.Obfuscation {
			c.Meta.Obfuscation[k] = v
		}
	}
	c.Meta.RelatedEvents = append([]RelatedEvent(nil), a.Meta.RelatedEvents...)
	return c
}

func cloneStrings(s []string) []string {
	if s == nil {
		return nil
	}
	return append([]string(nil), s...)
}
