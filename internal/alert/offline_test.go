package alert

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/loupe-sec/loupe/internal/falco"
)

const shellOutput = "17:20:42.123456789: Notice A shell was spawned in a container with an attached terminal (user=root user_loginuid=-1 k8s.ns=default k8s.pod=web-7d4 container=3ad7b26ded6d shell=bash parent=runc cmdline=bash -il terminal=34816 container_id=3ad7b26ded6d image=nginx)"

func analyze(t *testing.T, a Alert) Analysis {
	t.Helper()
	an, err := Offline{}.Analyze(context.Background(), a, Context{})
	if err != nil {
		t.Fatal(err)
	}
	if err := an.Validate(); err != nil {
		t.Fatalf("invalid analysis: %v", err)
	}
	return an
}

func TestOfflineTerminalShell(t *testing.T) {
	an := analyze(t, Alert{Rule: "Terminal shell in container", Priority: "Notice", Output: shellOutput, Hostname: "node-1"})
	m := an.MitreAttack
	if m.Technique != "T1059.004" || m.Tactic != "Execution" || m.TacticID != "TA0002" || !strings.Contains(m.URL, "T1059/004") {
		t.Errorf("mapping %+v", m)
	}
	// Notice is low; running as root raises it one step.
	if an.RiskAssessment.Severity != "medium" {
		t.Errorf("severity %s, want medium", an.RiskAssessment.Severity)
	}
	for _, want := range []string{`"bash -il"`, "parent runc", "user root", "3ad7b26ded6d", "nginx", "namespace default", "host node-1"} {
		if !strings.Contains(an.AttackVector, want) {
			t.Errorf("attack vector lacks %q: %s", want, an.AttackVector)
		}
	}
	if an.FalsePositive.Likelihood != "medium" || !strings.Contains(strings.Join(an.FalsePositive.CommonCauses, "|"), "kubectl exec") {
		t.Errorf("false positive %+v", an.FalsePositive)
	}
	if len(an.Mitigations.Immediate) == 0 || len(an.Mitigations.ShortTerm) == 0 || len(an.Mitigations.LongTerm) == 0 {
		t.Errorf("mitigations %+v", an.Mitigations)
	}
}

func TestOfflineEscapeMitigations(t *testing.T) {
	an := analyze(t, Alert{Rule: "Launch Privileged Container", Priority: "Informational", Output: "Privileged container started (user=root container_id=abc image=evil k8s.ns=prod-payments)"})
	if an.MitreAttack.Technique != "T1611" {
		t.Fatalf("technique %s", an.MitreAttack.Technique)
	}
	all := strings.Join(append(append(an.Mitigations.Immediate, an.Mitigations.ShortTerm...), an.Mitigations.LongTerm...), "|")
	for _, want := range []string{"isolate the pod", "privileged: true", "Pod Security Admission"} {
		if !strings.Contains(all, want) {
			t.Errorf("mitigations lack %q: %s", want, all)
		}
	}
	if an.RiskAssessment.Severity != "low" || !strings.Contains(an.Summary, "prod-payments") {
		t.Errorf("severity %s summary %s", an.RiskAssessment.Severity, an.Summary)
	}
}

func TestOfflineSeverityContext(t *testing.T) {
	base := Alert{Rule: "Write below etc", Priority: "Error", Output: "File below /etc opened for writing (user=bob command=vi /etc/hosts file=/etc/hosts)"}
	if s := analyze(t, base).RiskAssessment.Severity; s != "high" {
		t.Errorf("Error priority: %s, want high", s)
	}
	root := base
	root.Output = strings.Replace(base.Output, "user=bob", "user=root", 1)
	if s := analyze(t, root).RiskAssessment.Severity; s != "critical" {
		t.Errorf("as root: %s, want critical", s)
	}
	benign := base
	benign.OutputFields = map[string]string{"proc.name": "dpkg"}
	an := analyze(t, benign)
	if an.RiskAssessment.Severity != "medium" || an.FalsePositive.Likelihood != "high" {
		t.Errorf("dpkg: severity %s fp %s", an.RiskAssessment.Severity, an.FalsePositive.Likelihood)
	}
	emerg := base
	emerg.Priority = "Emergency"
	emerg.Output = root.Output
	if s := analyze(t, emerg).RiskAssessment.Severity; s != "critical" {
		t.Errorf("emergency as root: %s", s)
	}
}

func TestOfflineTagsWin(t *testing.T) {
	an := analyze(t, Alert{Rule: "Terminal shell in container", Output: "x", Tags: []string{"mitre_persistence", "T1543"}})
	if an.MitreAttack.Tactic != "Persistence" || an.MitreAttack.Technique != "T1543" {
		t.Errorf("mapping %+v", an.MitreAttack)
	}
	// A tactic tag alone sets the tactic; the catalog still names the
	// technique, so every alert gets one.
	an = analyze(t, Alert{Rule: "Terminal shell in container", Output: "x", Tags: []string{"mitre_execution"}})
	if an.MitreAttack.Technique != "T1059.004" {
		t.Errorf("agreeing tactic tag: %+v", an.MitreAttack)
	}
	an = analyze(t, Alert{Rule: "Terminal shell in container", Output: "x", Tags: []string{"mitre_discovery"}})
	if an.MitreAttack.Technique != "T1059.004" || an.MitreAttack.Tactic != "Discovery" {
		t.Errorf("disagreeing tactic tag: %+v", an.MitreAttack)
	}
}

func TestOfflineUnknownRule(t *testing.T) {
	an := analyze(t, Alert{Rule: "My Custom Rule", Output: "something odd happened (proc.name=x)"})
	if an.RiskAssessment.Confidence != "low" || an.MitreAttack.Technique != "" || !strings.Contains(an.AttackVector, "My Custom Rule") {
		t.Errorf("unknown rule: %+v", an)
	}
}

func TestOfflineCoversEveryRule(t *testing.T) {
	for _, r := range falco.Rules() {
		an := analyze(t, Alert{Rule: r.Name, Priority: "Warning", Output: "x"})
		if an.MitreAttack.Technique != r.Technique || an.RiskAssessment.Confidence == "" {
			t.Errorf("%s: %+v", r.Name, an.MitreAttack)
		}
	}
}

func TestValidate(t *testing.T) {
	good := validAnalysis("v")
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mutate := range map[string]func(*Analysis){
		"severity upper":   func(a *Analysis) { a.RiskAssessment.Severity = "High" },
		"confidence":       func(a *Analysis) { a.RiskAssessment.Confidence = "certain" },
		"likelihood":       func(a *Analysis) { a.FalsePositive.Likelihood = "" },
		"vector":           func(a *Analysis) { a.AttackVector = " " },
		"technique":        func(a *Analysis) { a.MitreAttack.Technique = "T59" },
		"technique suffix": func(a *Analysis) { a.MitreAttack.Technique = "T1059.04" },
	} {
		a := good
		mutate(&a)
		if a.Validate() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	a := good
	a.RiskAssessment.Severity, a.FalsePositive.Likelihood, a.MitreAttack.Technique = " Critical", "LOW", "t1059.004"
	a.Normalize()
	if err := a.Validate(); err != nil {
		t.Errorf("normalized: %v", err)
	}
}

// fakeModel answers with tokens from the prompt, as a model would.
type fakeModel struct {
	answer func(c Context) (Analysis, error)
	calls  int
}

func (f *fakeModel) Analyze(ctx context.Context, a Alert, c Context) (Analysis, error) {
	f.calls++
	return f.answer(c)
}

func TestServiceRestoresTokensAndCaches(t *testing.T) {
	var prompt string
	model := &fakeModel{answer: func(c Context) (Analysis, error) {
		prompt = c.Prompt
		an := validAnalysis("User [USER-1] on [INTERNAL-IP-1] opened a shell")
		an.Mitigations.Immediate = []string{"Lock [USER-1]"}
		return an, nil
	}}
	s := &Service{Analyzer: model, Provider: "ollama", Model: "llama3.1:8b", Cache: NewCache(0, 0), Obfuscate: true}
	a := Alert{Rule: "Terminal shell in container", Output: "Shell (user=alice connection=10.1.2.3:22 password=hunter2)"}
	an, err := s.Analyze(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(prompt, "alice") || strings.Contains(prompt, "10.1.2.3") || strings.Contains(prompt, "hunter2") {
		t.Errorf("prompt leaks values:\n%s", prompt)
	}
	if an.AttackVector != "User alice on 10.1.2.3 opened a shell" || an.Mitigations.Immediate[0] != "Lock alice" {
		t.Errorf("not restored: %q %q", an.AttackVector, an.Mitigations.Immediate)
	}
	if an.Meta.Provider != "ollama" || an.Meta.Model != "llama3.1:8b" || an.Meta.PromptVersion != PromptVersion ||
		an.Meta.Obfuscation["user"] != 1 || an.Meta.Obfuscation["internal-ip"] != 1 || an.Meta.Obfuscation["secret"] != 1 || an.Meta.DedupCount != 1 {
		t.Errorf("meta %+v", an.Meta)
	}
	a.Output = strings.Replace(a.Output, "10.1.2.3", "10.9.9.9", 1)
	again, err := s.Analyze(context.Background(), a)
	if err != nil || !again.Meta.Cached || again.Meta.DedupCount != 2 || model.calls != 1 {
		t.Errorf("second call: cached %v dedup %d calls %d err %v", again.Meta.Cached, again.Meta.DedupCount, model.calls, err)
	}
}

func TestServiceFallsBackAndDoesNotCache(t *testing.T) {
	for name, answer := range map[string]func(Context) (Analysis, error){
		"error": func(Context) (Analysis, error) { return Analysis{}, errors.New("connection refused") },
		"invalid": func(Context) (Analysis, error) {
			a := validAnalysis("v")
			a.RiskAssessment.Severity = "apocalyptic"
			return a, nil
		},
	} {
		model := &fakeModel{answer: answer}
		s := &Service{Analyzer: model, Provider: "openai", Cache: NewCache(0, 0)}
		a := Alert{Rule: "Terminal shell in container", Output: shellOutput}
		for i := range 2 {
			an, err := s.Analyze(context.Background(), a)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if an.Meta.Provider != ProviderOffline || an.Meta.Fallback == "" || an.Meta.Cached {
				t.Errorf("%s call %d: meta %+v", name, i, an.Meta)
			}
		}
		if model.calls != 2 || s.Cache.Len() != 0 {
			t.Errorf("%s: model called %d times, cache len %d", name, model.calls, s.Cache.Len())
		}
	}
}

func TestServiceDryRun(t *testing.T) {
	s := &Service{Obfuscate: true, Analyzer: &fakeModel{answer: func(Context) (Analysis, error) { panic("dry run called the model") }}}
	d, err := s.DryRun(context.Background(), Alert{Rule: "Read sensitive file untrusted", Priority: "Warning", Hostname: "db-7.corp.example.com",
		Output: "Sensitive file opened (user=carol file=/etc/shadow token=ghp_abcdefghijklmnopqrstuvwxyz0123456789)"})
	if err != nil {
		t.Fatal(err)
	}
	for _, leak := range []string{"carol", "db-7.corp.example.com", "ghp_"} {
		if strings.Contains(d.Prompt, leak) {
			t.Errorf("prompt contains %q", leak)
		}
	}
	if !strings.Contains(d.Prompt, "/etc/shadow") || !strings.Contains(d.Prompt, "Read sensitive file untrusted") || !strings.Contains(d.Prompt, "[USER-1]") {
		t.Errorf("prompt lost content:\n%s", d.Prompt)
	}
	values := map[string]string{}
	for _, e := range d.Table {
		values[e.Value] = e.Token
	}
	if values["carol"] != "[USER-1]" || values["db-7.corp.example.com"] == "" || values["(not kept)"] != "[REDACTED]" {
		t.Errorf("table %+v", d.Table)
	}
}
