package sigma

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/loupe-sec/loupe/internal/attack"
	"github.com/loupe-sec/loupe/internal/finding"
)

// Rule is one loaded Sigma rule (detection or correlation). Its exported
// fields are the metadata; the compiled matcher is private and immutable.
type Rule struct {
	ID          string    `json:"id,omitempty"`
	Name        string    `json:"name,omitempty"` // reference name for correlations
	Title       string    `json:"title"`
	Status      string    `json:"status,omitempty"`
	Level       string    `json:"level,omitempty"`
	Author      string    `json:"author,omitempty"`
	Description string    `json:"description,omitempty"`
	References  []string  `json:"references,omitempty"`
	Tags        []string  `json:"tags,omitempty"`
	Logsource   Logsource `json:"logsource"`
	File        string    `json:"file"`
	Document    int       `json:"document"`              // 1-based document number in File
	Correlation string    `json:"correlation,omitempty"` // correlation type, "" for detection rules

	filter   sourceFilter
	searches []*search
	cond     *cond
	eventIDs []int // required Windows event ids, for the index; nil = any
	generate bool  // emit its own matches (false when only feeding a correlation)
	// generateTop is a top-level "generate: true" of a correlation rule
	// (accepted beside the one inside the correlation section).
	generateTop bool
	corrs       []*correlation // the correlations that read this rule's matches
	def         *correlation   // a correlation rule's own definition
	pre         []preLit       // literal clause for the prefilter; nil = always evaluated
	more        [][]preLit     // further clauses that must hold too

	attr     finding.Rule
	what     string // "triggered the Sigma rule \"Title\""
	tactic   attack.Tactic
	techs    []finding.Technique
	priority finding.Priority
	index    int
}

// search is one search identifier of a detection: any of alts matches
// when all of its tests do.
type search struct {
	name string
	alts [][]*fieldTest
}

// parseMeta reads the metadata shared by detection and correlation rules.
func parseMeta(n *ynode, r *Rule) error {
	r.Title = strings.TrimSpace(n.get("title").str())
	if r.Title == "" {
		return fmt.Errorf("rule has no title")
	}
	r.ID = strings.TrimSpace(n.get("id").str())
	r.Name = strings.TrimSpace(n.get("name").str())
	r.Status = n.get("status").str()
	r.Level = strings.ToLower(n.get("level").str())
	r.Description = n.get("description").str()
	if a := n.get("author"); a != nil {
		r.Author = strings.Join(a.strs(), ", ")
	}
	r.References = n.get("references").strs()
	r.Tags = n.get("tags").strs()
	r.generateTop = n.get("generate").str() == "true"
	if ls := n.get("logsource"); ls != nil {
		if ls.kind != kMap {
			return fmt.Errorf("logsource is %s, not a mapping", describe(ls))
		}
		r.Logsource = Logsource{Product: ls.get("product").str(), Category: ls.get("category").str(), Service: ls.get("service").str()}
	}
	switch r.Level {
	case "", "informational", "low", "medium", "high", "critical":
	default:
		return fmt.Errorf("unknown level %q", r.Level)
	}
	r.resolveMeta()
	return nil
}

// resolveMeta maps tags, level and references onto the finding fields.
func (r *Rule) resolveMeta() {
	var tacticSet bool
	var firstTechTactics []attack.Tactic
	for _, tag := range r.Tags {
		t := strings.ToLower(tag)
		rest, ok := strings.CutPrefix(t, "attack.")
		if !ok {
			continue
		}
		if len(rest) >= 5 && rest[0] == 't' && rest[1] >= '0' && rest[1] <= '9' {
			if tech, tas, ok := attack.Lookup(rest); ok && !slices.Contains(r.techs, tech) {
				r.techs = append(r.techs, tech)
				if firstTechTactics == nil {
					firstTechTactics = tas
				}
			}
			continue
		}
		if !tacticSet {
			if ta, ok := attack.TacticByName(rest); ok {
				r.tactic, tacticSet = ta, true
			}
		}
	}
	if !tacticSet && len(firstTechTactics) > 0 {
		r.tactic = firstTechTactics[0]
	}
	p, err := finding.ParsePriority(r.Level)
	if err != nil {
		p = finding.Medium
	}
	r.priority = p
	link := ""
	for _, ref := range r.References {
		if strings.HasPrefix(ref, "https://") || strings.HasPrefix(ref, "http://") {
			link = ref
			break
		}
	}
	if link == "" && r.ID != "" {
		link = "https://github.com/search?type=code&q=repo%3ASigmaHQ%2Fsigma+" + url.QueryEscape(r.ID)
	}
	id := r.ID
	if id == "" {
		id = r.Name
	}
	if id == "" {
		id = r.File + "#" + strconv.Itoa(r.Document)
	}
	author := r.Author
	if author == "" {
		author = "unknown (Sigma rule without author)"
	}
	r.what = "triggered the Sigma rule " + quote(r.Title, 160)
	r.attr = finding.Rule{ID: "sigma:" + id, Title: r.Title, Author: author, Link: link, Level: r.Level, Status: r.Status}
}

// compileDetection compiles the detection section of a rule.
func (r *Rule) compileDetection(c *compileCtx, det *ynode) error {
	if det == nil || det.kind != kMap {
		return fmt.Errorf("detection is %s, not a mapping", describe(det))
	}
	var names []string
	for i, name := range det.keys {
		if name == "condition" || name == "timeframe" {
			continue
		}
		s, err := c.compileSearch(name, det.vals[i])
		if err != nil {
			return err
		}
		names = append(names, name)
		r.searches = append(r.searches, s)
	}
	if tf := det.get("timeframe"); tf != nil {
		_ = tf // only meaningful with the v1 aggregation, which is reported below
	}
	cn := det.get("condition")
	var conds []string
	switch {
	case cn == nil || cn.isNull():
		return fmt.Errorf("detection has no condition")
	case cn.kind == kScalar:
		conds = []string{cn.val}
	case cn.kind == kSeq:
		conds = cn.strs()
		if len(conds) != len(cn.seq) {
			return fmt.Errorf("condition list holds non-strings")
		}
	default:
		return fmt.Errorf("condition is a mapping")
	}
	if len(conds) == 0 {
		return fmt.Errorf("detection has no condition")
	}
	var top *cond
	for _, s := range conds {
		p, err := parseCondition(s)
		if err != nil {
			return err
		}
		b, err := p.bind(names)
		if err != nil {
			return err
		}
		if top == nil {
			top = b
		} else if top.op == opOr && top.name == "" {
			top.kids = append(top.kids, b)
		} else {
			top = &cond{op: opOr, kids: []*cond{top, b}}
		}
	}
	r.cond = top
	return nil
}

func (c *compileCtx) compileSearch(name string, v *ynode) (*search, error) {
	s := &search{name: name}
	switch {
	case v == nil || v.isNull():
		return nil, fmt.Errorf("search %s is empty", name)
	case v.kind == kMap:
		alt, err := c.compileMap(name, v)
		if err != nil {
			return nil, err
		}
		s.alts = [][]*fieldTest{alt}
	case v.kind == kSeq:
		var keywords []*ynode
		for _, x := range v.seq {
			switch {
			case x.kind == kMap:
				alt, err := c.compileMap(name, x)
				if err != nil {
					return nil, err
				}
				s.alts = append(s.alts, alt)
			case x.kind == kScalar && !x.isNull():
				keywords = append(keywords, x)
			default:
				return nil, fmt.Errorf("search %s: list item is %s", name, describe(x))
			}
		}
		if len(keywords) > 0 {
			t, err := c.compileFieldTest("", &ynode{kind: kSeq, seq: keywords}, true)
			if err != nil {
				return nil, withSearch(name, err)
			}
			s.alts = append(s.alts, []*fieldTest{t})
		}
		if len(s.alts) == 0 {
			return nil, fmt.Errorf("search %s is an empty list", name)
		}
	default:
		t, err := c.compileFieldTest("", v, true)
		if err != nil {
			return nil, withSearch(name, err)
		}
		s.alts = [][]*fieldTest{{t}}
	}
	return s, nil
}

func (c *compileCtx) compileMap(name string, m *ynode) ([]*fieldTest, error) {
	if len(m.keys) == 0 {
		return nil, fmt.Errorf("search %s: empty mapping", name)
	}
	var out []*fieldTest
	for i, k := range m.keys {
		keyword := k == "" || strings.HasPrefix(k, "|")
		t, err := c.compileFieldTest(k, m.vals[i], keyword)
		if err != nil {
			return nil, withSearch(name, err)
		}
		out = append(out, t)
	}
	return out, nil
}

func withSearch(name string, err error) error {
	if u, ok := err.(*unsupported); ok {
		return u
	}
	return fmt.Errorf("search %s: %w", name, err)
}

// requiredEventIDs returns the Windows event ids any match of c must
// have, or nil when c does not pin them down.
func (r *Rule) requiredEventIDs(c *cond) []int {
	switch c.op {
	case opRef:
		var out []int
		for _, alt := range r.searches[c.search].alts {
			ids := altEventIDs(alt)
			if ids == nil {
				return nil
			}
			out = union(out, ids)
		}
		return out
	case opAnd:
		var best []int
		for _, k := range c.kids {
			if ids := r.requiredEventIDs(k); ids != nil && (best == nil || len(ids) < len(best)) {
				best = ids
			}
		}
		return best
	case opOr:
		var out []int
		for _, k := range c.kids {
			ids := r.requiredEventIDs(k)
			if ids == nil {
				return nil
			}
			out = union(out, ids)
		}
		return out
	}
	return nil
}

func altEventIDs(alt []*fieldTest) []int {
	for _, t := range alt {
		if t.acc == nil || t.acc.name != "EventID" || t.kind != tStr || t.all || t.null || t.cased {
			continue
		}
		var ids []int
		ok := true
		for _, p := range t.pats {
			n, err := strconv.Atoi(p.lit)
			if p.kind != patEqual || err != nil {
				ok = false
				break
			}
			ids = append(ids, n)
		}
		if ok && len(ids) > 0 {
			return ids
		}
	}
	return nil
}

func union(a, b []int) []int {
	for _, x := range b {
		if !slices.Contains(a, x) {
			a = append(a, x)
		}
	}
	if a == nil {
		a = []int{}
	}
	return a
}

func intersect(a, b []int) []int {
	out := []int{}
	for _, x := range a {
		if slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}
