// Package cluster groups events by the template of their text, in the
// manner of the Drain log parser, and attaches the engine's detections and
// findings to those groups, so that a language model can be shown a few
// hundred clusters instead of millions of events.
//
// An event's text (its message, command line, or for a Windows record
// without either the fields that describe it) is split into tokens at white
// space; a leading token names where it came from (syslog program, Falco
// rule, Windows channel and event id). Tokens that are numbers, IP
// addresses, hex ids or paths are masked (<NUM>, <IP>, <HEX>, <PATH>) before
// anything is compared. A fixed-depth prefix tree routes the token sequence
// by its length and its first tokens to a leaf of candidate clusters; the
// most similar candidate (share of positions with equal tokens) takes the
// event when the share reaches Options.Similarity, and the positions where
// they differ become the parameter <*>. Otherwise the event starts a new
// cluster.
//
// Memory is bounded whatever the event count: at most Options.MaxClusters
// clusters are held (the least recently matched one is evicted, sparing
// clusters with detections when a plain one is near the end of the list),
// each holding a bounded number of tokens, representative events, hosts,
// detections and findings; the tree keeps no node without a cluster below
// it. A Miner is not safe for concurrent use.
package cluster

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/loupe-sec/loupe/internal/detect"
	"github.com/loupe-sec/loupe/internal/event"
	"github.com/loupe-sec/loupe/internal/finding"
)

// Param is the template token of a position whose words differ.
const Param = "<*>"

// Masks stand for a token of the given shape.
const (
	MaskNum  = "<NUM>"
	MaskIP   = "<IP>"
	MaskHex  = "<HEX>"
	MaskPath = "<PATH>"
)

// Options tune a Miner; zero values take the defaults.
type Options struct {
	MaxClusters        int     // clusters held; 0: 2000
	Depth              int     // tokens routed on below the length level; 0: 3
	Similarity         float64 // share of equal tokens to join a cluster; 0: 0.5
	MaxChildren        int     // children of one tree node; 0: 100
	MaxTokens          int     // tokens of one event considered; 0: 40
	MaxRepresentatives int     // events kept per cluster; 0: 3
	MaxHosts           int     // distinct hosts named per cluster; 0: 5
	MaxDetections      int     // distinct detections per cluster; 0: 8
	MaxFindings        int     // findings kept per cluster; 0: 8
}

func (o Options) withDefaults() Options {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.MaxClusters, 2000)
	def(&o.Depth, 3)
	def(&o.MaxChildren, 100)
	def(&o.MaxTokens, 40)
	def(&o.MaxRepresentatives, 3)
	def(&o.MaxHosts, 5)
	def(&o.MaxDetections, 8)
	def(&o.MaxFindings, 8)
	if o.Similarity <= 0 || o.Similarity > 1 {
		o.Similarity = 0.5
	}
	return o
}

// Representative is a copy of one event of a cluster.
type Representative struct {
	RecordID string
	Index    string
	Line     int64
	Time     time.Time
	Host     string
	User     string
	Text     string // the event's text, at most MaxTextBytes
	Detected bool   // a detection fired on this event
}

// MaxTextBytes bounds the text kept for a representative event.
const MaxTextBytes = 512

// Detection is the engine's detection of one rule in a cluster.
type Detection struct {
	RuleID     string
	Title      string
	Tactic     string
	Techniques []string
	Priority   finding.Priority
	Count      int64 // detections of this rule in the cluster
}

// Cluster is one template and what matched it.
type Cluster struct {
	ID        uint64 // unique within its Miner, in order of creation
	tokens    []string
	Count     int64 // events matched
	First     time.Time
	Last      time.Time
	Events    []Representative
	Hosts     []string
	MoreHosts bool // events came from hosts beyond those named

	Detections     []Detection
	MoreDetections int64            // detections of rules beyond MaxDetections
	Priority       finding.Priority // highest detection priority
	Findings       []*finding.Finding

	leaf       *node
	prev, next *Cluster // LRU list, front = most recently matched
}

// Template is the cluster's template, tokens joined by spaces.
func (c *Cluster) Template() string { return strings.Join(c.tokens, " ") }

// Tokens returns a copy of the template's tokens.
func (c *Cluster) Tokens() []string { return slices.Clone(c.tokens) }

// Detected reports whether any detection fired in the cluster.
func (c *Cluster) Detected() bool { return len(c.Detections) > 0 || c.MoreDetections > 0 }

// Stats count a Miner's work.
type Stats struct {
	Events  int64 // events added
	Created int64 // clusters created
	Evicted int64 // clusters evicted to stay within MaxClusters
	Live    int   // clusters held now
}

// node is a prefix tree node; leaves hold clusters.
type node struct {
	parent   *node
	key      string
	children map[string]*node
	clusters []*Cluster
}

// Miner mines templates from events.
type Miner struct {
	opt   Options
	root  node
	byLen map[int]*node
	head  *Cluster // most recently matched
	tail  *Cluster
	live  int
	next  uint64
	stats Stats

	toks    []string
	idText  map[int]string    // event id → token
	keyMask map[string]string // "key=" → "key=<NUM>" etc.
	byRec   map[string]*Cluster
}

// NewMiner returns an empty Miner.
func NewMiner(opt Options) *Miner {
	return &Miner{
		opt:     opt.withDefaults(),
		byLen:   make(map[int]*node),
		idText:  make(map[int]string),
		keyMask: make(map[string]string),
		byRec:   make(map[string]*Cluster),
	}
}

// Options returns the options in effect, defaults filled in.
func (m *Miner) Options() Options { return m.opt }

// Stats returns the counters so far.
func (m *Miner) Stats() Stats {
	s := m.stats
	s.Live = m.live
	return s
}

// Add mines one event and returns its cluster, valid until a later Add
// evicts it.
func (m *Miner) Add(ev *event.Event) *Cluster {
	m.stats.Events++
	m.toks = m.eventTokens(m.toks[:0], ev)
	c := m.match(m.toks, true)
	c.Count++
	if !ev.Time.IsZero() {
		if c.First.IsZero() || ev.Time.Before(c.First) {
			c.First = ev.Time
		}
		if ev.Time.After(c.Last) {
			c.Last = ev.Time
		}
	}
	if ev.Host != "" && !slices.Contains(c.Hosts, ev.Host) {
		if len(c.Hosts) < m.opt.MaxHosts {
			c.Hosts = append(c.Hosts, strings.Clone(ev.Host))
		} else {
			c.MoreHosts = true
		}
	}
	if len(c.Events) < m.opt.MaxRepresentatives {
		c.Events = append(c.Events, representative(ev))
	}
	return c
}

// Match returns the cluster an event would join, or nil, changing nothing.
func (m *Miner) Match(ev *event.Event) *Cluster {
	toks := m.eventTokens(nil, ev)
	return m.match(toks, false)
}

// Detect attaches a detection to c, the cluster of d.Event. The event
// becomes one of c's representatives, replacing an undetected one when
// all slots are taken.
func (m *Miner) Detect(c *Cluster, d detect.Detection) {
	if c == nil {
		return
	}
	if d.Priority > c.Priority || !c.Detected() {
		c.Priority = max(c.Priority, d.Priority)
	}
	found := false
	for i := range c.Detections {
		if c.Detections[i].RuleID == d.Rule.ID {
			c.Detections[i].Count++
			found = true
			break
		}
	}
	if !found {
		if len(c.Detections) < m.opt.MaxDetections {
			dt := Detection{RuleID: d.Rule.ID, Title: d.Rule.Title, Tactic: d.Tactic, Priority: d.Priority, Count: 1}
			for _, t := range d.Techniques {
				dt.Techniques = append(dt.Techniques, t.ID)
			}
			c.Detections = append(c.Detections, dt)
		} else {
			c.MoreDetections++
		}
	}
	ev := d.Event
	if ev == nil {
		return
	}
	m.remember(ev.ID, c)
	for i := range c.Events {
		if c.Events[i].RecordID == ev.ID {
			c.Events[i].Detected = true
			return
		}
	}
	r := representative(ev)
	r.Detected = true
	if len(c.Events) < m.opt.MaxRepresentatives {
		c.Events = append(c.Events, r)
		return
	}
	for i := len(c.Events) - 1; i >= 0; i-- {
		if !c.Events[i].Detected {
			c.Events[i] = r
			return
		}
	}
}

// maxRecords bounds the record id → cluster index used to place findings.
const maxRecords = 1 << 16

func (m *Miner) remember(id string, c *Cluster) {
	if id == "" {
		return
	}
	if _, ok := m.byRec[id]; ok {
		m.byRec[id] = c
		return
	}
	if len(m.byRec) >= maxRecords {
		clear(m.byRec) // crude but bounded: findings after this may go unplaced
	}
	m.byRec[strings.Clone(id)] = c
}

// Place returns the cluster of a record id whose event had a detection, or
// nil when it is unknown or its cluster was evicted.
func (m *Miner) Place(recordID string) *Cluster {
	c := m.byRec[recordID]
	if c == nil || c.leaf == nil {
		return nil
	}
	return c
}

// AddFinding attaches an offline finding to c (a copy; bounded).
func (m *Miner) AddFinding(c *Cluster, f *finding.Finding) {
	if c == nil || f == nil {
		return
	}
	for i, g := range c.Findings {
		if g.ID == f.ID {
			cp := *f
			c.Findings[i] = &cp
			return
		}
	}
	if len(c.Findings) < m.opt.MaxFindings {
		cp := *f
		c.Findings = append(c.Findings, &cp)
	}
}

// Clusters returns the clusters held, most events first.
func (m *Miner) Clusters() []*Cluster {
	out := make([]*Cluster, 0, m.live)
	for c := m.head; c != nil; c = c.next {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b *Cluster) int {
		if a.Count != b.Count {
			if a.Count > b.Count {
				return -1
			}
			return 1
		}
		if a.ID < b.ID {
			return -1
		}
		return 1
	})
	return out
}

func representative(ev *event.Event) Representative {
	text := ev.Message
	if ev.CommandLine != "" {
		text = ev.CommandLine
	}
	if text == "" {
		text = ev.Summary()
	}
	return Representative{
		RecordID: strings.Clone(ev.ID),
		Index:    strings.Clone(ev.Index),
		Line:     ev.Line,
		Time:     ev.Time,
		Host:     strings.Clone(ev.Host),
		User:     strings.Clone(ev.User),
		Text:     strings.Clone(clip(text, MaxTextBytes)),
	}
}

// clip cuts s to at most n bytes at a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// match finds (or, with add, creates) the cluster of toks.
func (m *Miner) match(toks []string, add bool) *Cluster {
	n := len(toks)
	lenNode := m.byLen[n]
	if lenNode == nil {
		if !add {
			return nil
		}
		lenNode = &node{parent: &m.root, key: strconv.Itoa(n)}
		m.byLen[n] = lenNode
	}
	cur := lenNode
	for d := 0; d < m.opt.Depth && d < n; d++ {
		key := routeKey(toks[d])
		child := cur.children[key]
		if child == nil && len(cur.children) >= m.opt.MaxChildren {
			child = cur.children[Param] // a full node sends new words to its parameter child
		}
		if child == nil {
			if !add {
				return nil
			}
			if cur.children == nil {
				cur.children = make(map[string]*node)
			}
			if len(cur.children) >= m.opt.MaxChildren {
				key = Param
			}
			if child = cur.children[key]; child == nil {
				child = &node{parent: cur, key: strings.Clone(key)}
				cur.children[child.key] = child
			}
		}
		cur = child
	}
	var best *Cluster
	bestSim, bestParams := -1.0, -1
	for _, c := range cur.clusters {
		sim, params := similarity(c.tokens, toks)
		if sim > bestSim || sim == bestSim && params > bestParams {
			best, bestSim, bestParams = c, sim, params
		}
	}
	if best != nil && bestSim >= m.opt.Similarity {
		if add {
			for i, t := range best.tokens {
				if t != Param && t != toks[i] {
					best.tokens[i] = Param
				}
			}
			m.touch(best)
		}
		return best
	}
	if !add {
		return nil
	}
	if m.live >= m.opt.MaxClusters {
		m.evict(cur)
	}
	c := &Cluster{ID: m.next, tokens: make([]string, n), leaf: cur}
	m.next++
	for i, t := range toks {
		c.tokens[i] = strings.Clone(t)
	}
	cur.clusters = append(cur.clusters, c)
	m.pushFront(c)
	m.live++
	m.stats.Created++
	return c
}

// similarity is the share of positions where tmpl and toks hold the same
// word (a parameter never counts as equal), and the number of parameters.
func similarity(tmpl, toks []string) (float64, int) {
	if len(tmpl) == 0 {
		return 1, 0
	}
	same, params := 0, 0
	for i, t := range tmpl {
		switch {
		case t == Param:
			params++
		case t == toks[i]:
			same++
		}
	}
	return float64(same) / float64(len(tmpl)), params
}

// routeKey is the tree key of a token: words with digits (and masks) go
// under the parameter key, so that ids in leading positions do not split
// the tree.
func routeKey(t string) string {
	if len(t) > 0 && t[0] == '<' && t[len(t)-1] == '>' {
		return Param
	}
	for i := 0; i < len(t); i++ {
		if t[i] >= '0' && t[i] <= '9' {
			return Param
		}
	}
	return t
}

// Evict the least recently matched cluster; among the last few prefer one
// without detections. keep is the leaf about to receive a cluster.
func (m *Miner) evict(keep *node) {
	const look = 16
	victim := m.tail
	i := 0
	for c := m.tail; c != nil && i < look; c, i = c.prev, i+1 {
		if !c.Detected() {
			victim = c
			break
		}
	}
	if victim == nil {
		return
	}
	m.unlink(victim)
	leaf := victim.leaf
	victim.leaf = nil
	if k := slices.Index(leaf.clusters, victim); k >= 0 {
		leaf.clusters = slices.Delete(leaf.clusters, k, k+1)
	}
	m.live--
	m.stats.Evicted++
	// Drop tree nodes left without clusters below them.
	for n := leaf; n != keep && n != &m.root && len(n.clusters) == 0 && len(n.children) == 0; {
		p := n.parent
		if p == &m.root {
			delete(m.byLen, atoi(n.key))
		} else {
			delete(p.children, n.key)
		}
		if isAncestor(n, keep) {
			break
		}
		n = p
	}
}

func isAncestor(n, of *node) bool {
	for p := of; p != nil; p = p.parent {
		if p == n {
			return true
		}
	}
	return false
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func (m *Miner) pushFront(c *Cluster) {
	c.prev, c.next = nil, m.head
	if m.head != nil {
		m.head.prev = c
	}
	m.head = c
	if m.tail == nil {
		m.tail = c
	}
}

func (m *Miner) unlink(c *Cluster) {
	if c.prev != nil {
		c.prev.next = c.next
	} else {
		m.head = c.next
	}
	if c.next != nil {
		c.next.prev = c.prev
	} else {
		m.tail = c.prev
	}
	c.prev, c.next = nil, nil
}

func (m *Miner) touch(c *Cluster) {
	if m.head == c {
		return
	}
	m.unlink(c)
	m.pushFront(c)
}
