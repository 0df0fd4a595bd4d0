package sigma

import (
	"container/list"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/loupe-sec/loupe/internal/detect"
	"github.com/loupe-sec/loupe/internal/finding"
)

// Bounds of correlation state, per Engine.
const (
	defaultMaxTracked = 10000 // groups per correlation
	maxThreshold      = 4096  // events or values one group may have to hold
	maxCorrEvidence   = 5     // supporting events kept per group
)

// correlation is a compiled Sigma correlation rule.
type correlation struct {
	rule     *Rule
	kind     string // event_count, value_count, temporal, temporal_ordered
	refNames []string
	refs     []*Rule
	groupBy  []string
	aliases  map[string]map[string]string // alias → rule name/id → field
	timespan time.Duration
	min, max int64 // condition bounds; max < 0 when open
	neq      int64 // count that must not be reached exactly; < 0 when none
	// atClose: the condition has an upper bound or neq, so it is decided
	// when a group's window closes (a later event past the timespan, an
	// eviction, or the end of the stream) rather than when a count is
	// reached.
	atClose  bool
	field    string
	generate bool
	index    int

	// Resolved when the rule set is built, per referenced rule.
	groupAcc [][]*accessor
	fieldAcc []*accessor
}

// compileCorrelation reads a correlation section.
func compileCorrelation(r *Rule, n *ynode) (*correlation, error) {
	c := &correlation{rule: r, max: -1, neq: -1}
	c.kind = n.get("type").str()
	switch c.kind {
	case "event_count", "value_count", "temporal", "temporal_ordered":
	case "":
		return nil, fmt.Errorf("correlation has no type")
	default:
		return nil, unsupportedf("correlation: type %s", c.kind)
	}
	c.refNames = n.get("rules").strs()
	if len(c.refNames) == 0 {
		return nil, fmt.Errorf("correlation names no rules")
	}
	c.groupBy = n.get("group-by").strs()
	ts := n.get("timespan").str()
	if ts == "" {
		ts = n.get("timeframe").str()
	}
	d, err := parseTimespan(ts)
	if err != nil {
		return nil, err
	}
	c.timespan = d
	if g := n.get("generate"); g != nil {
		c.generate = g.str() == "true"
	}
	if r.generateTop {
		c.generate = true
	}
	if al := n.get("aliases"); al != nil && al.kind == kMap {
		c.aliases = map[string]map[string]string{}
		for i, alias := range al.keys {
			m := al.vals[i]
			if m.kind != kMap {
				return nil, fmt.Errorf("correlation alias %s is not a mapping", alias)
			}
			c.aliases[alias] = map[string]string{}
			for j, rn := range m.keys {
				c.aliases[alias][rn] = m.vals[j].str()
			}
		}
	}
	cond := n.get("condition")
	switch {
	case c.kind == "temporal" || c.kind == "temporal_ordered":
		c.min = int64(len(c.refNames)) // every rule matched (the spec's only form)
	case cond == nil || cond.kind != kMap:
		return nil, fmt.Errorf("correlation %s needs a condition mapping", c.kind)
	default:
		if err := c.bounds(cond); err != nil {
			return nil, err
		}
		if c.kind == "value_count" {
			c.field = cond.get("field").str()
			if c.field == "" {
				return nil, fmt.Errorf("value_count correlation needs condition.field")
			}
		}
	}
	return c, nil
}

// bounds reads gt/gte/lt/lte/eq/neq into [min, max] and neq.
func (c *correlation) bounds(cond *ynode) error {
	for i, k := range cond.keys {
		if k == "field" {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(cond.vals[i].str()), 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("correlation condition %s: %q is not a count", k, cond.vals[i].str())
		}
		switch k {
		case "gt":
			c.min = n + 1
		case "gte":
			c.min = n
		case "eq":
			c.min, c.max = n, n
		case "lt":
			c.max = n - 1
		case "lte":
			c.max = n
		case "neq":
			c.neq = n
		default:
			return fmt.Errorf("correlation condition: unknown operator %q", k)
		}
	}
	if c.min <= 0 && c.max < 0 && c.neq < 0 {
		return fmt.Errorf("correlation condition has no operator")
	}
	if c.max >= 0 && c.max < max(c.min, 1) {
		return fmt.Errorf("correlation condition can never hold (at most %d, at least %d)", c.max, max(c.min, 1))
	}
	c.atClose = c.max >= 0 || c.neq >= 0
	if c.min > maxThreshold || c.max > maxThreshold || c.neq > maxThreshold {
		return unsupportedf("correlation: threshold above %d", maxThreshold)
	}
	return nil
}

func parseTimespan(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if len(s) < 2 {
		return 0, fmt.Errorf("correlation timespan %q: want a number and s, m, h, d or w", s)
	}
	n, err := strconv.Atoi(s[:len(s)-1])
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("correlation timespan %q: want a number and s, m, h, d or w", s)
	}
	unit := map[byte]time.Duration{'s': time.Second, 'm': time.Minute, 'h': time.Hour, 'd': 24 * time.Hour, 'w': 7 * 24 * time.Hour}[s[len(s)-1]]
	if unit == 0 {
		return 0, fmt.Errorf("correlation timespan %q: unknown unit", s)
	}
	return time.Duration(n) * unit, nil
}

// resolveFields binds group-by and value fields per referenced rule,
// through the aliases.
func (c *correlation) resolveFields(as *accessors) {
	c.groupAcc = make([][]*accessor, len(c.refs))
	c.fieldAcc = make([]*accessor, len(c.refs))
	for i, ref := range c.refs {
		for _, g := range c.groupBy {
			c.groupAcc[i] = append(c.groupAcc[i], as.get(c.aliasField(g, ref)))
		}
		if c.field != "" {
			c.fieldAcc[i] = as.get(c.aliasField(c.field, ref))
		}
	}
}

func (c *correlation) aliasField(name string, ref *Rule) string {
	if m, ok := c.aliases[name]; ok {
		for _, key := range []string{ref.Name, ref.ID} {
			if f, ok := m[key]; ok && key != "" {
				return f
			}
		}
	}
	return name
}

func (c *correlation) refIndex(r *Rule) int {
	for i, x := range c.refs {
		if x == r {
			return i
		}
	}
	return -1
}

// corrState is the correlation state of one stream: per correlation, an
// LRU of groups capped at maxTracked.
type corrState struct {
	max    int
	tables []corrTable
}

type corrTable struct {
	groups map[string]*list.Element
	lru    list.List
}

type corrGroup struct {
	key      string
	times    []time.Time          // event_count: ring of recent event times
	head     int                  // ring start
	values   map[string]time.Time // value_count: last time per value
	last     []time.Time          // temporal: last match per rule; ordered: chain start per step
	seen     []bool
	evidence []finding.Evidence
	start    time.Time // window-close groups: start of the current window
	count    int64     // window-close: events in the window
	dead     bool      // window-close: the count passed the upper bound
	over     bool      // window-close: the count passed neq (no upper bound): holds
	overN    int64     // the count when it passed neq
}

func newCorrState(rs *Ruleset) *corrState {
	if rs == nil {
		return &corrState{}
	}
	s := &corrState{max: rs.maxTracked, tables: make([]corrTable, len(rs.corrs))}
	return s
}

func (s *corrState) group(x *Engine, c *correlation, key string, emit func(detect.Detection)) *corrGroup {
	t := &s.tables[c.index]
	if t.groups == nil {
		t.groups = map[string]*list.Element{}
	}
	if el, ok := t.groups[key]; ok {
		t.lru.MoveToFront(el)
		return el.Value.(*corrGroup)
	}
	if t.lru.Len() >= s.max {
		old := t.lru.Back()
		t.lru.Remove(old)
		g := old.Value.(*corrGroup)
		delete(t.groups, g.key)
		if c.atClose {
			c.close(x, g, emit)
		}
	}
	g := &corrGroup{key: key}
	t.groups[key] = t.lru.PushFront(g)
	return g
}

func (s *corrState) drop(c *correlation, g *corrGroup) {
	t := &s.tables[c.index]
	if el, ok := t.groups[g.key]; ok {
		t.lru.Remove(el)
		delete(t.groups, g.key)
	}
}

// observe feeds one match of rule r into correlation c.
func (s *corrState) observe(x *Engine, c *correlation, r *Rule, emit func(detect.Detection)) {
	ri := c.refIndex(r)
	if ri < 0 {
		return
	}
	var kb strings.Builder
	for i, a := range c.groupAcc[ri] {
		if i > 0 {
			kb.WriteByte(0x1f)
		}
		kb.WriteString(x.value(a).s)
	}
	key := kb.String()
	ev := x.ev
	now := ev.Time
	g := s.group(x, c, key, emit)
	if len(g.evidence) == maxCorrEvidence {
		copy(g.evidence, g.evidence[1:])
		g.evidence = g.evidence[:maxCorrEvidence-1]
	}
	g.evidence = append(g.evidence, detect.Evidence(ev))
	within := func(t time.Time) bool { return now.Sub(t) <= c.timespan }
	if c.atClose {
		c.observeWindow(x, g, ri, now, emit)
		return
	}
	var count int64
	switch c.kind {
	case "event_count":
		if g.times == nil {
			g.times = make([]time.Time, 0, c.min)
		}
		// Drop events that left the window, then add this one.
		live := g.times[:0]
		for _, t := range g.times {
			if within(t) {
				live = append(live, t)
			}
		}
		g.times = live
		if int64(len(g.times)) == c.min { // full: the oldest falls out
			copy(g.times, g.times[1:])
			g.times = g.times[:len(g.times)-1]
		}
		g.times = append(g.times, now)
		count = int64(len(g.times))
	case "value_count":
		v := x.value(c.fieldAcc[ri])
		if !v.ok || v.null {
			return
		}
		if g.values == nil {
			g.values = map[string]time.Time{}
		}
		for k, t := range g.values {
			if !within(t) {
				delete(g.values, k)
			}
		}
		val := strings.Clone(v.s)
		if _, ok := g.values[val]; !ok && int64(len(g.values)) >= c.min {
			return // already at the threshold; it fired when it got there
		}
		g.values[val] = now
		count = int64(len(g.values))
	case "temporal":
		if g.last == nil {
			g.last = make([]time.Time, len(c.refs))
			g.seen = make([]bool, len(c.refs))
		}
		g.last[ri], g.seen[ri] = now, true
		for i := range g.last {
			if g.seen[i] && within(g.last[i]) {
				count++
			}
		}
	case "temporal_ordered":
		if g.last == nil {
			g.last = make([]time.Time, len(c.refs))
			g.seen = make([]bool, len(c.refs))
		}
		switch {
		case ri == 0:
			g.last[0], g.seen[0] = now, true
		case g.seen[ri-1] && within(g.last[ri-1]):
			g.last[ri], g.seen[ri] = g.last[ri-1], true
		default:
			return
		}
		if g.seen[len(c.refs)-1] && within(g.last[len(c.refs)-1]) {
			count = int64(len(c.refs))
		}
	}
	if count < c.min || (c.max >= 0 && count > c.max) {
		return
	}
	d := c.detection(x, key, count, g.evidence)
	s.drop(c, g) // start afresh: one conclusion per window
	if c.rule.generate {
		emit(d)
	}
	for _, outer := range c.rule.corrs { // a chain: this firing is a match of a rule outer names
		s.observe(x, outer, c.rule, emit)
	}
}

// observeWindow counts one event into a window-close group (tumbling
// windows per group). The event is already last in g.evidence; an event
// past the window closes it and opens the next.
func (c *correlation) observeWindow(x *Engine, g *corrGroup, ri int, now time.Time, emit func(detect.Detection)) {
	if g.count > 0 && now.Sub(g.start) > c.timespan {
		last := g.evidence[len(g.evidence)-1]
		g.evidence = g.evidence[:len(g.evidence)-1]
		c.close(x, g, emit)
		*g = corrGroup{key: g.key, evidence: append(g.evidence[:0], last)}
	}
	if g.count == 0 {
		g.start = now
	}
	g.count++
	if g.dead || g.over {
		return
	}
	if c.kind == "value_count" {
		if v := x.value(c.fieldAcc[ri]); v.ok && !v.null {
			if g.values == nil {
				g.values = map[string]time.Time{}
			}
			if _, ok := g.values[v.s]; !ok {
				g.values[strings.Clone(v.s)] = now
			}
		}
	}
	// Past the upper bound the window cannot hold any more; past neq
	// (with no upper bound) it holds whatever follows. Either way no
	// more values need keeping.
	switch n := c.windowCount(g); {
	case c.max >= 0 && n > c.max:
		g.dead, g.values = true, nil
	case c.max < 0 && c.neq >= 0 && n > c.neq && n >= c.min:
		g.over, g.overN, g.values = true, n, nil
	}
}

// windowCount is the counted quantity of a window: events, or distinct
// values of the field.
func (c *correlation) windowCount(g *corrGroup) int64 {
	switch {
	case c.kind != "value_count":
		return g.count
	case g.over:
		return g.overN
	}
	return int64(len(g.values))
}

// close decides a window-close group's condition and emits when it holds.
func (c *correlation) close(x *Engine, g *corrGroup, emit func(detect.Detection)) {
	if g.count == 0 || g.dead {
		return
	}
	n := c.windowCount(g)
	if !g.over && (n == 0 || n < c.min || (c.max >= 0 && n > c.max) || n == c.neq) {
		return
	}
	if !c.rule.generate {
		return
	}
	d := c.detection(x, g.key, n, nil)
	d.Event = nil // the window's events are in Related
	d.Related = append([]finding.Evidence(nil), g.evidence...)
	emit(d)
}

// flush closes every window-close group at the end of the stream.
func (s *corrState) flush(x *Engine, emit func(detect.Detection)) {
	for _, c := range x.rs.corrs {
		if !c.atClose || c.index >= len(s.tables) {
			continue
		}
		t := &s.tables[c.index]
		for el := t.lru.Back(); el != nil; el = el.Prev() {
			c.close(x, el.Value.(*corrGroup), emit)
		}
	}
}

func (c *correlation) detection(x *Engine, key string, count int64, evidence []finding.Evidence) detect.Detection {
	r := c.rule
	var what strings.Builder
	what.WriteString("triggered the Sigma correlation " + quote(r.Title, 160) + ": ")
	switch c.kind {
	case "event_count":
		fmt.Fprintf(&what, "%d matching events", count)
	case "value_count":
		fmt.Fprintf(&what, "%d distinct %s values", count, c.field)
	case "temporal":
		fmt.Fprintf(&what, "all %d rules matched", count)
	case "temporal_ordered":
		fmt.Fprintf(&what, "%d rules matched in order", count)
	}
	fmt.Fprintf(&what, " within %s", c.timespan)
	if len(c.groupBy) > 0 {
		vals := strings.Split(key, "\x1f")
		for i, g := range c.groupBy {
			if i < len(vals) {
				fmt.Fprintf(&what, ", %s %s", g, quote(vals[i], 80))
			}
		}
	}
	d := detect.Detection{
		Rule:       r.attr,
		Tactic:     r.tactic.Name,
		TacticID:   r.tactic.ID,
		Techniques: r.techs,
		Priority:   r.priority,
		Source:     "sigma",
		Event:      x.ev,
		Count:      count,
		Key:        r.attr.ID + "|" + key,
		What:       what.String(),
	}
	if len(evidence) > 1 {
		d.Related = append([]finding.Evidence(nil), evidence[:len(evidence)-1]...)
	}
	if d.Tactic == "" && len(c.refs) > 0 {
		d.Tactic, d.TacticID = c.refs[0].tactic.Name, c.refs[0].tactic.ID
		if len(d.Techniques) == 0 {
			d.Techniques = c.refs[0].techs
		}
	}
	return d
}
