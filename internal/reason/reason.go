// Package reason turns detections into findings: per ATT&CK tactic a
// DFIQ-style investigative question, and conclusions composed from evidence.
//
// Findings stream: the first detection of a conclusion (its detect Key) is
// emitted at once. Repeats of the same conclusion are not emitted again;
// they are counted in a bounded group table (least recently used groups are
// evicted) and summarised when their group is evicted or at Flush.
package reason

import (
	"container/list"
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	"github.com/loupe-sec/loupe/internal/attack"
	"github.com/loupe-sec/loupe/internal/detect"
	"github.com/loupe-sec/loupe/internal/event"
	"github.com/loupe-sec/loupe/internal/finding"
)

// Options tune reasoning.
type Options struct {
	// MaxEvidence caps the events linked to one conclusion. 0 = 5.
	MaxEvidence int
	// MaxGroups bounds the repeated-conclusion groups held. 0 = 10000.
	MaxGroups int
}

const (
	defaultMaxEvidence = 5
	defaultMaxGroups   = 10000
	maxSummaryRunes    = 300 // evidence summary length
	maxNames           = 5   // distinct users or hosts named in a sentence
)

// Reasoner is not safe for concurrent use; use one per stream.
type Reasoner struct {
	maxEvidence int
	maxGroups   int
	groups      map[string]*list.Element // Key → element holding *group
	lru         list.List                // front = most recently used
}

// group holds one conclusion and its repeats. Its size is O(MaxEvidence):
// it keeps copies of the facts it needs, never the events.
type group struct {
	key        string
	firstID    string // record id of the first evidence, seeds finding ids
	tactic     string
	tacticID   string
	techniques []finding.Technique
	rule       finding.Rule
	source     string
	what       string
	host       string
	srcIP      string
	target     string
	image      string
	subjIP     bool

	priority   finding.Priority
	detections int64
	events     int64
	first      time.Time
	last       time.Time
	evidence   []finding.Evidence
	users      names // acting users across repeats
	hosts      names
}

// names is a small distinct set that keeps the first maxNames values and
// counts the rest.
type names struct {
	kept []string
	more int
}

func (n *names) add(s string) {
	if s == "" || contains(n.kept, s) {
		return
	}
	if len(n.kept) < maxNames {
		n.kept = append(n.kept, s)
		return
	}
	n.more++ // approximate: repeats beyond the kept names are not told apart
}

// New returns a Reasoner with the given options.
func New(opt Options) *Reasoner {
	r := &Reasoner{maxEvidence: opt.MaxEvidence, maxGroups: opt.MaxGroups}
	if r.maxEvidence <= 0 {
		r.maxEvidence = defaultMaxEvidence
	}
	if r.maxGroups <= 0 {
		r.maxGroups = defaultMaxGroups
	}
	r.groups = make(map[string]*list.Element)
	return r
}

// Add takes one detection and emits findings as soon as they are conclusive.
func (r *Reasoner) Add(d detect.Detection, emit func(*finding.Finding)) {
	key := d.Key
	if key == "" {
		key = d.Rule.ID + "\x00" + hostOf(d) + "\x00" + d.What
	}
	if el, ok := r.groups[key]; ok {
		r.lru.MoveToFront(el)
		r.repeat(el.Value.(*group), d)
		return
	}
	if r.lru.Len() >= r.maxGroups {
		r.evict(emit)
	}
	f, g := r.first(key, d)
	r.groups[key] = r.lru.PushFront(g)
	emit(f)
}

// Flush emits what is held at end of input (repeat counts).
func (r *Reasoner) Flush(emit func(*finding.Finding)) {
	for r.lru.Len() > 0 {
		r.evict(emit)
	}
}

// evict drops the least recently used group, summarising it if it repeated.
func (r *Reasoner) evict(emit func(*finding.Finding)) {
	el := r.lru.Back()
	if el == nil {
		return
	}
	g := r.lru.Remove(el).(*group)
	delete(r.groups, g.key)
	if g.detections > 1 {
		emit(g.summary())
	}
}

// first builds the finding for the first detection of a key and the group
// that will count its repeats.
func (r *Reasoner) first(key string, d detect.Detection) (*finding.Finding, *group) {
	ev := evidenceOf(d, r.maxEvidence)
	// A tactic given only by id or short name gets its canonical name and id.
	if t, ok := attack.TacticByName(tacticOr(d.Tactic, d.TacticID)); ok {
		d.Tactic, d.TacticID = t.Name, t.ID
	}
	g := &group{
		key:        key,
		tactic:     d.Tactic,
		tacticID:   d.TacticID,
		techniques: d.Techniques,
		rule:       d.Rule,
		source:     d.Source,
		what:       clean(d.What),
		priority:   priorityOf(d),
		detections: 1,
		events:     countOf(d, len(ev)),
		evidence:   make([]finding.Evidence, len(ev), r.maxEvidence),
	}
	copy(g.evidence, ev)
	if len(ev) > 0 {
		g.firstID = ev[0].RecordID
	}
	g.first, g.last = span(ev)

	fs := facts{what: g.what, rule: d.Rule, techs: d.Techniques, first: g.first, last: g.last, events: g.events}
	var hosts, accounts names
	if e := d.Event; e != nil {
		g.host = clean(e.Host)
		g.srcIP = clean(e.SrcIP)
		g.target = clean(e.TargetUser)
		g.image = baseName(clean(e.Image))
		if u := person(e.User); u != "" {
			fs.subjects = []string{u}
		}
		hosts.add(g.host)
	}
	for _, e := range ev {
		hosts.add(e.Host)
		if u := person(e.User); u != "" && !contains(fs.subjects, u) {
			accounts.add(u)
		}
	}
	if g.host == "" && len(hosts.kept) == 1 {
		g.host = hosts.kept[0]
	}
	// In a correlation over logons the remote address is the actor and the
	// accounts are what it tried.
	if d.Actor != "" {
		g.srcIP = clean(d.Actor) // the detector named the actor; it leads the sentence
	}
	g.subjIP = d.Source == "correlation" && g.srcIP != ""
	if g.subjIP && len(fs.subjects) > 0 {
		accounts.kept = append(fs.subjects, accounts.kept...)
		fs.subjects = nil
	}
	g.users.add(firstOr(fs.subjects))
	g.hosts = names{kept: append([]string(nil), hosts.kept...), more: hosts.more}

	fs.subjIP, fs.srcIP, fs.target, fs.image = g.subjIP, g.srcIP, g.target, g.image
	fs.hosts, fs.moreHost = hosts.kept, hosts.more
	fs.accounts, fs.moreAcct = accounts.kept, accounts.more

	f := &finding.Finding{
		ID:         findingID(key, g.firstID, ""),
		Tactic:     d.Tactic,
		TacticID:   d.TacticID,
		Techniques: d.Techniques,
		Question:   Question(tacticOr(d.Tactic, d.TacticID)),
		Conclusion: fs.sentence(),
		Priority:   g.priority,
		Rule:       d.Rule,
		Source:     d.Source,
		Host:       g.host,
		User:       firstOr(fs.subjects),
		First:      g.first,
		Last:       g.last,
		Count:      g.events,
		Evidence:   ev,
	}
	return f, g
}

// repeat counts one more detection of a held conclusion.
func (r *Reasoner) repeat(g *group, d detect.Detection) {
	g.detections++
	g.events += countOf(d, 1)
	if p := priorityOf(d); p > g.priority {
		g.priority = p
	}
	if e := d.Event; e != nil {
		g.users.add(clean(e.User))
		g.hosts.add(clean(e.Host))
		g.widen(e.Time)
	}
	for i := range d.Related {
		g.widen(d.Related[i].Time)
	}
	for i := range d.Related {
		if len(g.evidence) >= r.maxEvidence {
			return
		}
		if e := d.Related[i]; !hasRecord(g.evidence, e.RecordID) {
			g.evidence = append(g.evidence, tidy(e))
		}
	}
	if e := d.Event; e != nil && len(g.evidence) < r.maxEvidence && !hasRecord(g.evidence, e.ID) {
		g.evidence = append(g.evidence, fromEvent(e))
	}
}

func (g *group) widen(t time.Time) {
	if t.IsZero() {
		return
	}
	if g.first.IsZero() || t.Before(g.first) {
		g.first = t
	}
	if t.After(g.last) {
		g.last = t
	}
}

// summary is the finding for a conclusion that was made more than once.
func (g *group) summary() *finding.Finding {
	fs := facts{
		what: g.what, subjIP: g.subjIP, srcIP: g.srcIP, target: g.target, image: g.image,
		subjects: g.users.kept, moreSubj: g.users.more,
		hosts: g.hosts.kept, moreHost: g.hosts.more,
		first: g.first, last: g.last, events: g.events, repeats: g.detections,
		linked: len(g.evidence), rule: g.rule, techs: g.techniques,
	}
	host := g.host
	if len(g.hosts.kept) > 1 || g.hosts.more > 0 {
		host = ""
	}
	user := ""
	if len(g.users.kept) == 1 && g.users.more == 0 && !g.subjIP {
		user = g.users.kept[0]
	}
	if g.subjIP {
		fs.subjects, fs.moreSubj = nil, 0
		fs.accounts, fs.moreAcct = g.users.kept, g.users.more
	}
	return &finding.Finding{
		ID:         findingID(g.key, g.firstID, "repeats"),
		Tactic:     g.tactic,
		TacticID:   g.tacticID,
		Techniques: g.techniques,
		Question:   Question(tacticOr(g.tactic, g.tacticID)),
		Conclusion: fs.sentence(),
		Priority:   g.priority,
		Rule:       g.rule,
		Source:     g.source,
		Host:       host,
		User:       user,
		First:      g.first,
		Last:       g.last,
		Count:      g.events,
		Evidence:   g.evidence,
	}
}

// evidenceOf links the detection's related events, oldest first, then the
// conclusive event; at most max, always keeping the conclusive one.
func evidenceOf(d detect.Detection, max int) []finding.Evidence {
	n := len(d.Related)
	if d.Event != nil {
		n++
	}
	if n > max {
		n = max
	}
	out := make([]finding.Evidence, 0, n)
	rel := d.Related
	room := n
	if d.Event != nil {
		room--
	}
	if len(rel) > room {
		rel = rel[:room]
	}
	for _, e := range rel {
		out = append(out, tidy(e))
	}
	if e := d.Event; e != nil {
		out = append(out, fromEvent(e))
	}
	return out
}

// tidy readies a related evidence item for a conclusion.
func tidy(e finding.Evidence) finding.Evidence {
	e.Summary = truncate(clean(e.Summary), maxSummaryRunes)
	e.Host, e.User = clean(e.Host), clean(e.User)
	return e
}

func fromEvent(e *event.Event) finding.Evidence {
	return finding.Evidence{
		RecordID: strings.Clone(e.ID),
		Index:    strings.Clone(e.Index),
		Line:     e.Line,
		Time:     e.Time,
		Host:     strings.Clone(clean(e.Host)),
		User:     strings.Clone(clean(e.User)),
		Summary:  strings.Clone(truncate(clean(e.Summary()), maxSummaryRunes)),
	}
}

// priorityOf is the detection's priority: detect decides severity, the
// reasoner does not second-guess it.
func priorityOf(d detect.Detection) finding.Priority { return d.Priority }

func countOf(d detect.Detection, linked int) int64 {
	if d.Count > 0 {
		return d.Count
	}
	if linked > 0 {
		return int64(linked)
	}
	return 1
}

func span(ev []finding.Evidence) (first, last time.Time) {
	for _, e := range ev {
		if e.Time.IsZero() {
			continue
		}
		if first.IsZero() || e.Time.Before(first) {
			first = e.Time
		}
		if e.Time.After(last) {
			last = e.Time
		}
	}
	return first, last
}

func hostOf(d detect.Detection) string {
	if d.Event != nil {
		return d.Event.Host
	}
	return ""
}

func hasRecord(ev []finding.Evidence, id string) bool {
	for i := range ev {
		if ev[i].RecordID == id {
			return true
		}
	}
	return false
}

func firstOr(s []string) string {
	if len(s) > 0 {
		return s[0]
	}
	return ""
}

func tacticOr(name, id string) string {
	if name != "" {
		return name
	}
	return id
}

// findingID is a stable short id: FNV-1a of the group key, the first record
// id and a kind, in hex, so re-runs over the same input give the same ids.
func findingID(key, firstRecord, kind string) string {
	h := fnv.New64a()
	h.Write([]byte(key))
	h.Write([]byte{0})
	h.Write([]byte(firstRecord))
	if kind != "" {
		h.Write([]byte{0})
		h.Write([]byte(kind))
	}
	return fmt.Sprintf("%016x", h.Sum64())
}
