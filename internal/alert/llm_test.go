package alert

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/loupe-sec/loupe/internal/llm"
)

// fakeProvider answers from a list and records the requests.
type fakeProvider struct {
	mu      sync.Mutex
	answers []string
	err     error
	reqs    []llm.Request
}

func (f *fakeProvider) Name() string  { return "fake" }
func (f *fakeProvider) Model() string { return "fake-1" }
func (f *fakeProvider) Generate(_ context.Context, r llm.Request) (llm.Response, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, r)
	if f.err != nil {
		return llm.Response{}, f.err
	}
	a := f.answers[min(len(f.reqs)-1, len(f.answers)-1)]
	return llm.Response{Text: a}, nil
}

const goodAnswer = `{"attack_vector":"shell by [USER-1]","mitre_attack":{"tactic":"execution","technique":"t1059.004","technique_name":"Unix Shell"},
"risk_assessment":{"severity":"High","confidence":"medium","impact":"takeover"},
"mitigations":{"immediate":["a"],"short_term":["b"],"long_term":["c"]},
"false_positive":{"likelihood":"low","common_causes":["d"],"distinguishing_factors":["e"]},
"investigate":["f"],"summary":"g"}`

func TestLLMAnalyze(t *testing.T) {
	f := &fakeProvider{answers: []string{"```json\n" + goodAnswer + "\n```"}}
	an, err := LLM{Provider: f}.Analyze(context.Background(), Alert{Rule: "r"}, Context{Prompt: "the prompt"})
	if err != nil {
		t.Fatal(err)
	}
	if an.RiskAssessment.Severity != "high" || an.MitreAttack.Technique != "T1059.004" || an.MitreAttack.TacticID != "TA0002" || an.MitreAttack.URL == "" {
		t.Errorf("%+v %+v", an.RiskAssessment, an.MitreAttack)
	}
	if an.Meta.Provider != "fake" || an.Meta.Model != "fake-1" {
		t.Errorf("meta %+v", an.Meta)
	}
	if len(f.reqs) != 1 || f.reqs[0].User != "the prompt" || f.reqs[0].Schema == nil || f.reqs[0].System == "" {
		t.Errorf("requests %+v", f.reqs)
	}
}

func TestLLMRepair(t *testing.T) {
	bad := strings.Replace(goodAnswer, `"likelihood":"low"`, `"likelihood":"never"`, 1)
	f := &fakeProvider{answers: []string{bad, goodAnswer}}
	if _, err := (LLM{Provider: f}).Analyze(context.Background(), Alert{Rule: "r"}, Context{Prompt: "P"}); err != nil {
		t.Fatal(err)
	}
	if len(f.reqs) != 2 || !strings.HasPrefix(f.reqs[1].User, "P") || !strings.Contains(f.reqs[1].User, "never") {
		t.Fatalf("repair request: %+v", f.reqs)
	}

	f = &fakeProvider{answers: []string{bad}}
	_, err := LLM{Provider: f}.Analyze(context.Background(), Alert{Rule: "r"}, Context{Prompt: "P"})
	if !errors.Is(err, ErrInvalidAnswer) || len(f.reqs) != 2 {
		t.Errorf("err %v after %d requests", err, len(f.reqs))
	}

	// A transport error is not "repaired".
	f = &fakeProvider{err: errors.New("connection refused")}
	if _, err := (LLM{Provider: f}).Analyze(context.Background(), Alert{Rule: "r"}, Context{Prompt: "P"}); err == nil || len(f.reqs) != 1 {
		t.Errorf("err %v after %d requests", err, len(f.reqs))
	}
}

// The schema is in the strict form: every object closed, every property
// required, and the enums are the values Validate accepts.
func TestAnalysisSchema(t *testing.T) {
	var walk func(path string, s map[string]any)
	objects := 0
	walk = func(path string, s map[string]any) {
		switch s["type"] {
		case "object":
			objects++
			props := s["properties"].(map[string]any)
			req := s["required"].([]string)
			if s["additionalProperties"] != false || len(req) != len(props) {
				t.Errorf("%s: not strict: %v", path, s)
			}
			for _, k := range req {
				p, ok := props[k].(map[string]any)
				if !ok {
					t.Errorf("%s: required %s has no schema", path, k)
					continue
				}
				walk(path+"."+k, p)
			}
		case "array":
			walk(path+"[]", s["items"].(map[string]any))
		case "string":
		default:
			t.Errorf("%s: type %v", path, s["type"])
		}
	}
	s := AnalysisSchema()
	walk("$", s)
	if objects != 5 {
		t.Errorf("%d objects", objects)
	}
	sev := s["properties"].(map[string]any)["risk_assessment"].(map[string]any)["properties"].(map[string]any)["severity"].(map[string]any)
	if strings.Join(sev["enum"].([]string), ",") != strings.Join(Severities, ",") {
		t.Errorf("severity enum %v", sev)
	}
}

func FuzzDecodeAnswer(f *testing.F) {
	f.Add(goodAnswer)
	f.Add(goodAnswer[:100])
	f.Add(`{"meta":{"provider":"x"}}`)
	f.Add("```json\n{}\n```")
	f.Fuzz(func(t *testing.T, s string) {
		an, err := decodeAnswer(s)
		if err != nil {
			return
		}
		if verr := an.Validate(); verr != nil {
			t.Fatalf("decoded answer does not validate: %v", verr)
		}
		if !reflect.DeepEqual(an.Meta, Meta{}) || an.MitreAttack.URL != "" && !strings.HasPrefix(an.MitreAttack.URL, "https://attack.mitre.org/") {
			t.Fatalf("model set loupe's fields: %+v", an)
		}
	})
}
