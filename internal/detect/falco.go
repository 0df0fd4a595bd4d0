package detect

import (
	"strings"

	"github.com/loupe-sec/loupe/internal/attack"
	"github.com/loupe-sec/loupe/internal/event"
	"github.com/loupe-sec/loupe/internal/falco"
	"github.com/loupe-sec/loupe/internal/finding"
)

const falcoRulesLink = "https://falco.org/docs/reference/rules/default-rules/"

// falcoDetection trusts a Falco alert: its priority, its mitre_* tactic tag
// and T#### technique tags, or the rule table of package falco when it has
// none.
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
		if m, ok := falco.Lookup(ev.Rule); ok {
			t, tas, _ := attack.Lookup(m.Technique)
			techs = []finding.Technique{t}
			firstTechTactics = tas
			tactic, haveTactic = attack.TacticByName(m.Tactic)
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
		What:       validText(what),
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
