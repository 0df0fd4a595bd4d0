package deep

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"strings"
	"text/template"
	"time"

	"github.com/loupe-sec/loupe/internal/cluster"
	"github.com/loupe-sec/loupe/internal/obfuscate"
)

// PromptVersion names the prompt files in use; it is recorded on every
// finding the model took part in.
const PromptVersion = "clusters_v1"

//go:embed prompts/system_v1.txt
var systemPrompt string

//go:embed prompts/user_v1.txt
var userText string

var userTemplate = template.Must(template.New(PromptVersion).Parse(userText))

// Bounds of what one call shows the model.
const (
	maxTemplateBytes = 1024
	maxNameBytes     = 256
)

// batch is the clusters of one model call and what is needed to read its
// answer: the references sent and the Mapper that made the tokens.
type batch struct {
	clusters []*cluster.Cluster
	byRef    map[string]*cluster.Cluster        // "C1" → cluster
	events   map[string]*cluster.Representative // "E1" → event
	ofEvent  map[string]*cluster.Cluster        // "E1" → its cluster
	cRefs    []string
	eRefs    []string
	mapper   *obfuscate.Mapper
	prompt   string
	key      string
	cached   string // a cached answer for key, if any
}

type promptEvent struct {
	Ref, Time, Host, User, Text string
	Detected                    bool
}

type promptCluster struct {
	Ref, Template, Span, Hosts string
	Count                      int64
	Detections                 []string
	Events                     []promptEvent
}

type promptData struct {
	Events      int64
	Clusters    []promptCluster
	MaxFindings int
}

// quote renders a log value as a JSON string: quotes, backslashes and
// control characters (newlines included) are escaped, so no log text can
// end the data frame or start a line of its own.
func quote(s string) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // keep <*> and <IP> readable; the frame needs only quotes and controls escaped
	enc.Encode(s)
	return strings.TrimSuffix(b.String(), "\n")
}

func clipBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// build renders the obfuscated prompt of the clusters. Every value taken
// from the logs (template, hosts, rule titles, users, event texts) goes
// through one Mapper, in one text, so a value recognised in one place is
// replaced everywhere in the call; hosts and users named by the events'
// own fields are replaced wherever they occur.
func build(cs []*cluster.Cluster, events int64, maxFindings int, opt obfuscate.Options) *batch {
	b := &batch{clusters: cs, byRef: map[string]*cluster.Cluster{}, events: map[string]*cluster.Representative{},
		ofEvent: map[string]*cluster.Cluster{}}
	known := func(list *[]string, v string) {
		v = strings.TrimSpace(v)
		if len(v) >= 2 && v != "-" && !strings.EqualFold(v, "unknown") {
			*list = append(*list, v)
		}
	}
	for _, c := range cs {
		for _, h := range c.Hosts {
			known(&opt.KnownHosts, h)
		}
		for i := range c.Events {
			known(&opt.KnownHosts, c.Events[i].Host)
			known(&opt.KnownUsers, c.Events[i].User)
		}
		for _, f := range c.Findings {
			known(&opt.KnownHosts, f.Host)
			known(&opt.KnownUsers, f.User)
		}
	}
	// Structure preserved: one input line stays one output line below.
	opt.PreserveStructure = true
	b.mapper = obfuscate.New(opt)

	// Gather the raw values, one per line, obfuscate them together.
	var raw []string
	add := func(s string) int {
		raw = append(raw, strings.NewReplacer("\n", " ", "\r", " ").Replace(s))
		return len(raw) - 1
	}
	type slots struct {
		template, hosts int
		detections      []int
		events          [][3]int // host, user, text
	}
	var sl []slots
	for _, c := range cs {
		s := slots{template: add(clipBytes(c.Template(), maxTemplateBytes)), hosts: add(strings.Join(c.Hosts, ", "))}
		for _, d := range c.Detections {
			s.detections = append(s.detections, add(clipBytes(d.Title, maxNameBytes)))
		}
		for i := range c.Events {
			e := &c.Events[i]
			s.events = append(s.events, [3]int{add(clipBytes(e.Host, maxNameBytes)), add(clipBytes(e.User, maxNameBytes)), add(e.Text)})
		}
		sl = append(sl, s)
	}
	obf := strings.Split(b.mapper.Text(strings.Join(raw, "\n")), "\n")
	if len(obf) != len(raw) { // cannot happen with structure preserved; stay safe
		obf = make([]string, len(raw))
		for i, s := range raw {
			obf[i] = b.mapper.Text(s)
		}
	}

	d := promptData{Events: events, MaxFindings: maxFindings}
	ne := 0
	for i, c := range cs {
		ref := fmt.Sprintf("C%d", i+1)
		b.byRef[ref] = c
		b.cRefs = append(b.cRefs, ref)
		pc := promptCluster{Ref: ref, Template: quote(obf[sl[i].template]), Count: c.Count, Span: span(c.First, c.Last)}
		if h := obf[sl[i].hosts]; h != "" {
			pc.Hosts = quote(h)
			if c.MoreHosts {
				pc.Hosts += " and more"
			}
		}
		for j, dt := range c.Detections {
			line := fmt.Sprintf("rule %s, tactic %s", quote(obf[sl[i].detections[j]]), orWord(dt.Tactic, "unknown"))
			if len(dt.Techniques) > 0 {
				line += ", techniques " + strings.Join(dt.Techniques, " ")
			}
			line += fmt.Sprintf(", priority %s, %d times", dt.Priority, dt.Count)
			pc.Detections = append(pc.Detections, line)
		}
		if c.MoreDetections > 0 {
			pc.Detections = append(pc.Detections, fmt.Sprintf("%d more detections of other rules", c.MoreDetections))
		}
		for j := range c.Events {
			ne++
			e := &c.Events[j]
			eref := fmt.Sprintf("E%d", ne)
			b.events[eref] = e
			b.ofEvent[eref] = c
			b.eRefs = append(b.eRefs, eref)
			pe := promptEvent{Ref: eref, Text: quote(obf[sl[i].events[j][2]]), Detected: e.Detected}
			if !e.Time.IsZero() {
				pe.Time = e.Time.UTC().Format(time.RFC3339)
			}
			if h := obf[sl[i].events[j][0]]; h != "" {
				pe.Host = quote(h)
			}
			if u := obf[sl[i].events[j][1]]; u != "" {
				pe.User = quote(u)
			}
			pc.Events = append(pc.Events, pe)
		}
		d.Clusters = append(d.Clusters, pc)
	}
	var sb strings.Builder
	if err := userTemplate.Execute(&sb, d); err != nil {
		panic(fmt.Sprintf("deep: prompt template: %v", err)) // fixed template, plain data
	}
	b.prompt = sb.String()
	return b
}

func orWord(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func span(first, last time.Time) string {
	switch {
	case first.IsZero():
		return ""
	case last.Equal(first) || last.IsZero():
		return "at " + first.UTC().Format(time.RFC3339)
	}
	return "from " + first.UTC().Format(time.RFC3339) + " to " + last.UTC().Format(time.RFC3339)
}

// keyText normalises a prompt for the answer cache: digit runs (counts,
// times, pids) become "#", except inside obfuscation tokens ([USER-2]) and
// references (C1:, E3:), whose numbers carry meaning.
func keyText(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		c := s[i]
		if c == '[' {
			if j := tokenEnd(s, i); j > 0 {
				b.WriteString(s[i:j])
				i = j
				continue
			}
		}
		if (c == 'C' || c == 'E') && (i == 0 || s[i-1] == ' ') {
			j := i + 1
			for j < len(s) && s[j] >= '0' && s[j] <= '9' {
				j++
			}
			if j > i+1 && j < len(s) && s[j] == ':' {
				b.WriteString(s[i:j])
				i = j
				continue
			}
		}
		if c >= '0' && c <= '9' {
			for i < len(s) && s[i] >= '0' && s[i] <= '9' {
				i++
			}
			b.WriteByte('#')
			continue
		}
		b.WriteByte(c)
		i++
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

// tokenEnd returns the end of an obfuscation token starting at i
// ("[A-Z-]+-digits]"), or 0.
func tokenEnd(s string, i int) int {
	j := i + 1
	for j < len(s) && (s[j] >= 'A' && s[j] <= 'Z' || s[j] == '-') {
		j++
	}
	if j == i+1 || s[j-1] != '-' {
		return 0
	}
	k := j
	for k < len(s) && s[k] >= '0' && s[k] <= '9' {
		k++
	}
	if k == j || k >= len(s) || s[k] != ']' {
		return 0
	}
	return k + 1
}
