package detect

import (
	"strings"

	"github.com/loupe-sec/loupe/internal/attack"
	"github.com/loupe-sec/loupe/internal/event"
	"github.com/loupe-sec/loupe/internal/finding"
)

const falcoRulesLink = "https://falco.org/docs/reference/rules/default-rules/"

// falcoDefaults maps common Falco default rule names (lower case) to a
// technique and tactic, for alerts that carry no mitre tags.
var falcoDefaults = map[string]struct{ technique, tactic string }{
	"terminal shell in container":                                     {"T1059", "execution"},
	"run shell untrusted":                                             {"T1059.004", "execution"},
	"system user interactive":                                         {"T1059", "execution"},
	"netcat remote code execution in container":                       {"T1059", "execution"},
	"redirect stdout/stdin to network connection in container":        {"T1059", "execution"},
	"execution from /dev/shm":                                         {"T1059.004", "execution"},
	"drop and execute new binary in container":                        {"T1610", "persistence"},
	"read sensitive file untrusted":                                   {"T1555", "credential-access"},
	"read sensitive file trusted after startup":                       {"T1555", "credential-access"},
	"directory traversal monitored file read":                         {"T1555", "credential-access"},
	"search private keys or passwords":                                {"T1552.001", "credential-access"},
	"create symlink over sensitive files":                             {"T1555", "credential-access"},
	"create hardlink over sensitive files":                            {"T1555", "credential-access"},
	"find aws credentials":                                            {"T1552", "credential-access"},
	"clear log activities":                                            {"T1070", "defense-evasion"},
	"delete or rename shell history":                                  {"T1070", "defense-evasion"},
	"create hidden files or directories":                              {"T1564.001", "defense-evasion"},
	"fileless execution via memfd_create":                             {"T1620", "defense-evasion"},
	"modify binary dirs":                                              {"T1222.002", "defense-evasion"},
	"mkdir binary dirs":                                               {"T1222.002", "defense-evasion"},
	"write below binary dir":                                          {"T1543", "persistence"},
	"write below etc":                                                 {"T1098", "persistence"},
	"write below root":                                                {"T1098", "persistence"},
	"schedule cron jobs":                                              {"T1053.003", "persistence"},
	"modify shell configuration file":                                 {"T1546.004", "persistence"},
	"user mgmt binaries":                                              {"T1098", "persistence"},
	"linux kernel module injection detected":                          {"T1547.006", "persistence"},
	"launch privileged container":                                     {"T1611", "privilege-escalation"},
	"debugfs launched in privileged container":                        {"T1611", "privilege-escalation"},
	"change thread namespace":                                         {"T1611", "privilege-escalation"},
	"set setuid or setgid bit":                                        {"T1548.001", "privilege-escalation"},
	"non sudo setuid":                                                 {"T1548.001", "privilege-escalation"},
	"ptrace attached to process":                                      {"T1055.008", "privilege-escalation"},
	"polkit local privilege escalation vulnerability (cve-2021-4034)": {"T1068", "privilege-escalation"},
	"launch suspicious network tool in container":                     {"T1046", "discovery"},
	"launch suspicious network tool on host":                          {"T1046", "discovery"},
	"contact k8s api server from container":                           {"T1613", "discovery"},
	"packet socket created in container":                              {"T1040", "discovery"},
	"read ssh information":                                            {"T1005", "collection"},
	"disallowed ssh connection":                                       {"T1021.004", "lateral-movement"},
	"outbound connection to c2 servers":                               {"T1071", "command-and-control"},
	"unexpected udp traffic":                                          {"T1095", "command-and-control"},
	"detect crypto miners using the stratum protocol":                 {"T1496", "impact"},
	"remove bulk data from disk":                                      {"T1485", "impact"},
	"java process class file download":                                {"T1190", "initial-access"},
}

// falcoDetection trusts a Falco alert: its priority, its mitre_* tactic tag
// and T#### technique tags, or the default-rule table when it has none.
func falcoDetection(ev *event.Event) Detection {
	p, err := finding.ParsePriority(ev.Priority)
	if err != nil {
		p = finding.Medium
	}
	var tactic attack.Tactic
	haveTactic := false
	var techs []finding.Technique
	var firstTechTactics []attack.Tactic
	for _, tag := range ev.Tags {
		switch {
		case len(tag) > 6 && strings.EqualFold(tag[:6], "mitre_"):
			if !haveTactic {
				tactic, haveTactic = attack.TacticByName(tag)
			}
		case len(tag) >= 5 && (tag[0] == 'T' || tag[0] == 't') && tag[1] >= '0' && tag[1] <= '9':
			if t, tas, ok := attack.Lookup(tag); ok {
				techs = append(techs, t)
				if firstTechTactics == nil {
					firstTechTactics = tas
				}
			}
		}
	}
	if !haveTactic && len(techs) == 0 {
		if m, ok := falcoDefaults[strings.ToLower(strings.TrimSpace(ev.Rule))]; ok {
			t, tas, _ := attack.Lookup(m.technique)
			techs = []finding.Technique{t}
			firstTechTactics = tas
			tactic, haveTactic = attack.TacticByName(m.tactic)
		}
	}
	if !haveTactic && len(firstTechTactics) > 0 {
		tactic, haveTactic = firstTechTactics[0], true
	}
	if !haveTactic {
		tactic, _ = attack.TacticByName("execution")
	}
	what := falcoWhat(ev)
	object := ev.CommandLine
	if object == "" {
		object = ev.Image
	}
	if object == "" {
		object = ev.User
	}
	return Detection{
		Rule: finding.Rule{
			ID:     "falco:" + ev.Rule,
			Title:  ev.Rule,
			Author: "Falco",
			Link:   falcoRulesLink,
			Level:  p.String(),
		},
		Tactic:     tactic.Name,
		TacticID:   tactic.ID,
		Techniques: techs,
		Priority:   p,
		Source:     "falco",
		Event:      ev,
		Count:      1,
		Key:        "falco:" + ev.Rule + "|" + strings.ToLower(ev.Host) + "|" + norm(object),
		What:       what,
	}
}

// falcoWhat composes the observation from the alert: the sentence of its
// output (without the leading "time: Priority" and the trailing field list),
// then the command and the container or pod it ran in.
func falcoWhat(ev *event.Event) string {
	out := strings.TrimSpace(ev.Message)
	if first, rest, ok := strings.Cut(out, " "); ok && strings.HasSuffix(first, ":") && strings.Count(first, ":") >= 2 {
		out = strings.TrimSpace(rest)
	}
	if ev.Priority != "" && len(out) > len(ev.Priority) && strings.EqualFold(out[:len(ev.Priority)], ev.Priority) && out[len(ev.Priority)] == ' ' {
		out = strings.TrimSpace(out[len(ev.Priority):])
	}
	if i := strings.Index(out, " ("); i > 0 && strings.HasSuffix(out, ")") {
		out = strings.TrimSpace(out[:i]) // the field list is restated below
	}
	var b strings.Builder
	b.WriteString("raised the Falco alert ")
	if out == "" {
		out = ev.Rule
	}
	b.WriteString(quoted(oneLine(out), 160))
	if ev.CommandLine != "" {
		b.WriteString(" running ")
		b.WriteString(quoted(ev.CommandLine, 200))
	} else if ev.Image != "" {
		b.WriteString(" from process ")
		b.WriteString(quoted(ev.Image, 120))
	}
	if f, ok := ev.Data("fd.name"); ok && f != "" && f != "<NA>" {
		b.WriteString(" on ")
		b.WriteString(quoted(f, 120))
	}
	if c, ok := ev.Data("container.name"); ok && c != "" && c != "host" && c != "<NA>" {
		b.WriteString(" in container ")
		b.WriteString(quoted(c, 80))
		if ns, ok := ev.Data("k8s.ns.name"); ok && ns != "" && ns != "<NA>" {
			b.WriteString(" (Kubernetes namespace " + quoted(ns, 60) + ")")
		}
	} else if id, ok := ev.Data("container.id"); ok && id != "" && id != "host" && id != "<NA>" {
		b.WriteString(" in container " + quoted(id, 64))
	}
	return clip(b.String(), 400)
}
