package alert

import (
	"context"
	"fmt"
	"strings"

	"github.com/loupe-sec/loupe/internal/attack"
	"github.com/loupe-sec/loupe/internal/falco"
	"github.com/loupe-sec/loupe/internal/finding"
	"github.com/loupe-sec/loupe/internal/obfuscate"
)

// Context is what an Analyzer gets besides the alert.
type Context struct {
	// Mapper holds the tokens of this request; nil when obfuscation is off.
	Mapper *obfuscate.Mapper
	// Prompt is the obfuscated prompt text a model would receive.
	Prompt string
	// Related are log events around the alert, if a log store is wired.
	Related []RelatedEvent
}

// Analyzer analyses one alert. Implementations must be safe for concurrent
// use. An analyzer that talks to a model sends only c.Prompt (obfuscated);
// Service restores the tokens of its answer (Analysis.Restore).
type Analyzer interface {
	Analyze(ctx context.Context, a Alert, c Context) (Analysis, error)
}

// Offline analyses alerts from loupe's Falco rule table, ATT&CK data and
// mitigation catalog. It is deterministic, fast and sends nothing anywhere,
// so it sees the real values of the alert.
type Offline struct{}

// ProviderOffline names the offline analyzer in Meta.Provider.
const ProviderOffline = "offline"

// Analyze implements Analyzer.
func (Offline) Analyze(ctx context.Context, a Alert, c Context) (Analysis, error) {
	if err := ctx.Err(); err != nil {
		return Analysis{}, err
	}
	if err := a.Validate(); err != nil {
		return Analysis{}, err
	}
	rule, known := falco.Lookup(a.Rule)
	m := mapping(a, rule, known)
	obs := observe(a)

	var an Analysis
	an.MitreAttack = m
	an.Meta.Provider = ProviderOffline

	sev, why := severity(a, obs)
	fp := falco.FPMedium
	causes := []string{"Activity by administrators or automation that this rule does not know about"}
	if known {
		fp = rule.FP
		causes = append([]string(nil), rule.Causes...)
	}
	if obs.benign != "" {
		fp = raise(fp)
		causes = append([]string{fmt.Sprintf("The process %q is usually administrative tooling", obs.benign)}, causes...)
	}
	an.FalsePositive = FalsePositive{Likelihood: fp, CommonCauses: causes, DistinguishingFactors: distinguishing(m.Tactic, obs)}
	an.RiskAssessment = Risk{Severity: sev, Confidence: confidence(known, m.Technique != "", fp), Impact: impact(m, obs)}

	vector := rule.Vector
	if !known {
		vector = fmt.Sprintf("Falco rule %q fired", orUnknown(a.Rule))
		if m.Technique != "" {
			vector += fmt.Sprintf(", which its tags map to %s (%s)", m.TechniqueName, m.Technique)
		}
	}
	an.AttackVector = vector + ". " + obs.sentence(a)
	an.Mitigations = mitigationsFor(m.Technique, shortTactic(m.Tactic))
	an.Investigate = investigate(a, obs, shortTactic(m.Tactic))
	an.Summary = summary(a, an, why)
	return an, nil
}

// mapping takes ATT&CK from the alert's own tags (mitre_* for the tactic,
// T#### for the technique), else from the rule table.
func mapping(a Alert, rule falco.Rule, known bool) MitreAttack {
	var tactic attack.Tactic
	haveTactic := false
	var tech finding.Technique
	var techTactics []attack.Tactic
	for _, tag := range a.Tags {
		switch {
		case len(tag) > 6 && strings.EqualFold(tag[:6], "mitre_"):
			if !haveTactic {
				tactic, haveTactic = attack.TacticByName(tag)
			}
		case len(tag) >= 5 && (tag[0] == 'T' || tag[0] == 't') && tag[1] >= '0' && tag[1] <= '9':
			if tech.ID == "" {
				if t, tas, ok := attack.Lookup(tag); ok {
					tech, techTactics = t, tas
				}
			}
		}
	}
	if tech.ID == "" && known {
		// The alert's own mitre_* tag wins for the tactic; the catalog
		// supplies the technique (Falco's tags rarely name one).
		tech, techTactics, _ = attack.Lookup(rule.Technique)
		if !haveTactic {
			tactic, haveTactic = attack.TacticByName(rule.Tactic)
		}
	}
	if !haveTactic && len(techTactics) > 0 {
		tactic, haveTactic = techTactics[0], true
	}
	m := MitreAttack{Technique: tech.ID, TechniqueName: tech.Name}
	if haveTactic {
		m.Tactic, m.TacticID = tactic.Name, tactic.ID
	}
	if tech.ID != "" {
		m.URL = attack.URL(tech.ID)
	}
	return m
}

func shortTactic(name string) string {
	if t, ok := attack.TacticByName(name); ok {
		return t.Short
	}
	return ""
}

// observation is what the alert says about who did what where.
type observation struct {
	user, uid, process, cmdline, parent  string
	container, containerID, image        string
	namespace, pod, file, conn, host     string
	privileged, root, production, benign string // reasons, empty when absent
}

func observe(a Alert) observation {
	o := observation{
		user:        a.Field("user.name", "user"),
		uid:         a.Field("user.uid", "uid"),
		process:     a.Field("proc.name", "process", "shell", "proc"),
		cmdline:     a.Field("proc.cmdline", "command", "cmdline"),
		parent:      a.Field("proc.pname", "parent"),
		container:   a.Field("container.name", "container_name"),
		containerID: a.Field("container.id", "container_id"),
		image:       a.Field("container.image.repository", "container.image", "image"),
		namespace:   a.Field("k8s.ns.name", "k8s_ns", "k8s.ns", "ns"),
		pod:         a.Field("k8s.pod.name", "k8s_pod_name", "k8s_pod", "pod"),
		file:        a.Field("fd.name", "file", "filename"),
		conn:        a.Field("connection"),
		host:        a.Hostname,
	}
	if o.container == "host" {
		o.container = ""
	}
	if o.containerID == "host" {
		o.containerID = ""
	}
	if o.user == "root" || o.uid == "0" {
		o.root = "it ran as root"
	}
	if p := a.Field("container.privileged", "privileged"); strings.EqualFold(p, "true") {
		o.privileged = "the container is privileged"
	}
	if ns := strings.ToLower(o.namespace); strings.Contains(ns, "prod") || ns == "kube-system" {
		o.production = fmt.Sprintf("it happened in the %q namespace", o.namespace)
	}
	for _, p := range []string{o.process, o.parent} {
		if benignProcesses[p] {
			o.benign = p
			break
		}
	}
	return o
}

// benignProcesses are administrative tools whose activity often trips rules.
var benignProcesses = map[string]bool{
	"dpkg": true, "apt": true, "apt-get": true, "yum": true, "dnf": true, "rpm": true, "apk": true,
	"ansible": true, "ansible-playbook": true, "puppet": true, "chef-client": true, "salt-minion": true,
	"logrotate": true, "unattended-upgr": true, "unattended-upgrade": true, "cloud-init": true,
	"kubelet": true, "needrestart": true, "update-alternat": true, "ldconfig": true,
}

// sentence describes the observation: what ran, as whom, where.
func (o observation) sentence(a Alert) string {
	var b strings.Builder
	b.WriteString("Observed: ")
	switch {
	case o.cmdline != "":
		fmt.Fprintf(&b, "%q", clip(o.cmdline, 200))
	case o.process != "":
		fmt.Fprintf(&b, "process %q", o.process)
	default:
		fmt.Fprintf(&b, "%q", clip(firstSentence(a.Output), 200))
	}
	if o.parent != "" {
		fmt.Fprintf(&b, " (parent %s)", o.parent)
	}
	if o.user != "" {
		fmt.Fprintf(&b, " as user %s", o.user)
	}
	if o.file != "" {
		fmt.Fprintf(&b, " on %s", clip(o.file, 160))
	}
	if o.conn != "" {
		fmt.Fprintf(&b, " over connection %s", o.conn)
	}
	switch {
	case o.container != "":
		fmt.Fprintf(&b, " in container %s", o.container)
	case o.containerID != "":
		fmt.Fprintf(&b, " in container %s", o.containerID)
	}
	if o.image != "" {
		fmt.Fprintf(&b, " (image %s)", o.image)
	}
	if o.pod != "" {
		fmt.Fprintf(&b, ", pod %s", o.pod)
	}
	if o.namespace != "" {
		fmt.Fprintf(&b, " in namespace %s", o.namespace)
	}
	if o.host != "" {
		fmt.Fprintf(&b, " on host %s", o.host)
	}
	b.WriteString(".")
	return b.String()
}

// firstSentence drops Falco's "time: Priority" prefix and the field list.
func firstSentence(out string) string {
	out = strings.TrimSpace(out)
	if first, rest, ok := strings.Cut(out, " "); ok && strings.HasSuffix(first, ":") && strings.Count(first, ":") >= 2 {
		out = strings.TrimSpace(rest)
	}
	for _, p := range []string{"Emergency", "Alert", "Critical", "Error", "Warning", "Notice", "Informational", "Info", "Debug"} {
		if rest, ok := strings.CutPrefix(out, p+" "); ok {
			out = rest
			break
		}
	}
	if i := strings.Index(out, " ("); i > 0 {
		out = out[:i]
	}
	return out
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut] + "…"
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// severity starts from Falco's priority and moves one step for context:
// up for root, privileged containers and production namespaces, down for
// known administrative tools. It returns the reasons as a sentence.
func severity(a Alert, o observation) (string, string) {
	p, err := finding.ParsePriority(a.Priority)
	if err != nil || blank(a.Priority) {
		p = finding.Medium
	}
	base := p
	var up []string
	for _, r := range []string{o.root, o.privileged, o.production} {
		if r != "" {
			up = append(up, r)
		}
	}
	why := fmt.Sprintf("Falco priority %s", orUnknown(a.Priority))
	switch {
	case len(up) > 0 && o.benign == "":
		if p < finding.Critical {
			p++
		}
		why += ", raised because " + strings.Join(up, ", ")
	case o.benign != "" && len(up) == 0:
		if p > finding.Info {
			p--
		}
		why += fmt.Sprintf(", lowered because %s is usually administrative tooling", o.benign)
	}
	if p != base {
		why += fmt.Sprintf(" (%s to %s)", base, p)
	}
	return p.String(), why
}

func confidence(knownRule, haveTechnique bool, fp string) string {
	switch {
	case !knownRule && !haveTechnique:
		return "low"
	case !knownRule:
		return "medium"
	case fp == falco.FPLow:
		return "high"
	case fp == falco.FPMedium:
		return "medium"
	}
	return "low"
}

func raise(fp string) string {
	switch fp {
	case falco.FPLow:
		return falco.FPMedium
	}
	return falco.FPHigh
}

var impactByTactic = map[string]string{
	"initial-access":       "An external attacker may have a foothold in the workload and can run code with its privileges.",
	"execution":            "An attacker can run arbitrary commands with the privileges of the process, read its data and secrets, and stage further steps.",
	"persistence":          "An attacker can survive restarts and return at will; cleaning up requires finding every change made.",
	"privilege-escalation": "An attacker may gain root on the node or escape the container, reaching every workload and secret on the host.",
	"defense-evasion":      "Evidence of the intrusion may be gone and further activity can go unseen.",
	"credential-access":    "Stolen credentials let the attacker log in elsewhere as a legitimate user or service, beyond this host.",
	"discovery":            "The attacker is mapping the environment; this usually precedes lateral movement or data theft.",
	"lateral-movement":     "The intrusion may spread to other hosts and services.",
	"collection":           "Sensitive data may be gathered for theft.",
	"command-and-control":  "The workload may be under remote control of an attacker who can send commands and receive data.",
	"exfiltration":         "Data may have left the network.",
	"impact":               "Availability, data integrity or costs are directly affected (destroyed data, hijacked compute).",
}

func impact(m MitreAttack, o observation) string {
	s, ok := impactByTactic[shortTactic(m.Tactic)]
	if !ok {
		s = "Unclear without more context; treat as a potential compromise of the workload until explained."
	}
	if o.privileged != "" || o.root != "" {
		s += " The process had elevated privileges, which widens the blast radius."
	}
	return s
}

func distinguishing(tactic string, o observation) []string {
	var out []string
	if o.container != "" || o.containerID != "" {
		out = append(out, "A matching kubectl exec / docker exec by a known person in the audit log points to administration")
	}
	out = append(out, "Other alerts from the same process, container or host in the same time window point to an attack chain")
	if o.parent != "" {
		out = append(out, fmt.Sprintf("Whether the parent process %s is expected to start this program", o.parent))
	}
	return out
}

func investigate(a Alert, o observation, tactic string) []string {
	where := "this host"
	switch {
	case o.container != "":
		where = "container " + o.container
	case o.containerID != "":
		where = "container " + o.containerID
	case o.host != "":
		where = "host " + o.host
	}
	out := []string{
		fmt.Sprintf("All Falco alerts from %s in the 30 minutes before and after this one", where),
	}
	if o.parent != "" || o.process != "" {
		out = append(out, "The full process tree (parent and children) of "+orUnknown(firstNonEmpty(o.process, o.parent)))
	}
	switch tactic {
	case "credential-access":
		out = append(out, "Authentication and API audit logs for use of credentials from this workload")
	case "command-and-control", "exfiltration":
		out = append(out, "Network flow logs for the remote addresses this workload talked to")
	case "privilege-escalation":
		out = append(out, "Host-level activity on the node after the alert (new processes, kernel modules, files in /etc)")
	case "persistence":
		out = append(out, "Files changed in /etc, cron, systemd units and authorized_keys around the alert")
	default:
		out = append(out, "Commands run in the same session (shell history, Falco execve events)")
	}
	return out
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

func summary(a Alert, an Analysis, why string) string {
	tech := "no ATT&CK technique"
	if an.MitreAttack.Technique != "" {
		tech = fmt.Sprintf("%s %s (%s)", an.MitreAttack.Technique, an.MitreAttack.TechniqueName, an.MitreAttack.Tactic)
	}
	return fmt.Sprintf("Falco rule %q maps to %s. Severity %s: %s. False-positive likelihood %s, confidence %s.",
		orUnknown(a.Rule), tech, an.RiskAssessment.Severity, why, an.FalsePositive.Likelihood, an.RiskAssessment.Confidence)
}
