package alert

import (
	_ "embed"
	"fmt"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/loupe-sec/loupe/internal/obfuscate"
)

// PromptVersion names the prompt file in use; it is reported in Meta.
const PromptVersion = "analyze_v1"

//go:embed prompts/analyze_v1.txt
var promptText string

var promptTemplate = template.Must(template.New(PromptVersion).Parse(promptText))

// maxPromptOutput bounds the alert output placed in a prompt.
const maxPromptOutput = 8 << 10

type promptField struct{ Key, Value string }

type promptData struct {
	Rule, Priority, Time, Source, Hostname, Tags, Output string
	Fields                                               []promptField
	Related                                              []string
}

// Prompt builds the text a language model receives for a. Every value that
// could identify a person, host, address, container or secret goes through
// m first; the rule name, priority and tags are Falco's own words and pass
// through m too, in case a custom rule embeds a value. With m nil (obfuscation
// off) the values are used as they are.
func Prompt(a Alert, related []RelatedEvent, m *obfuscate.Mapper) string {
	text := func(s string) string {
		if m == nil {
			return s
		}
		return m.Text(s)
	}
	d := promptData{
		Rule:     text(orUnknown(a.Rule)),
		Priority: text(orUnknown(a.Priority)),
		Time:     "unknown",
		Source:   text(orDefault(a.Source, "syscall")),
		Hostname: "unknown",
		Tags:     text(orDefault(strings.Join(a.Tags, ", "), "none")),
		Output:   text(clip(a.Output, maxPromptOutput)),
	}
	if !a.Time.IsZero() {
		d.Time = a.Time.UTC().Format(time.RFC3339)
	}
	if a.Hostname != "" {
		if m == nil {
			d.Hostname = a.Hostname
		} else {
			d.Hostname = m.Fields(map[string]string{"hostname": a.Hostname})["hostname"]
		}
	}
	if len(a.OutputFields) > 0 {
		fields := a.OutputFields
		if m != nil {
			fields = m.Fields(fields)
		}
		keys := make([]string, 0, len(fields))
		for k := range fields {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			d.Fields = append(d.Fields, promptField{k, clip(fields[k], 1024)})
		}
	}
	for i, r := range related {
		if i == 20 {
			break
		}
		line := fmt.Sprintf("%s %s %s", r.Time.UTC().Format(time.RFC3339), orUnknown(r.Rule), clip(r.Output, 512))
		d.Related = append(d.Related, text(line))
	}
	var b strings.Builder
	if err := promptTemplate.Execute(&b, d); err != nil {
		// The template is fixed and the data plain strings: cannot happen.
		panic(fmt.Sprintf("alert: prompt template: %v", err))
	}
	return b.String()
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
