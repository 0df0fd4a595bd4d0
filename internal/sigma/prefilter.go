package sigma

// The literal prefilter. For each rule the compiler picks one clause that
// every match must satisfy: "field F contains one of these literals" (a
// Sigma value with contains, startswith, endswith, equality or wildcards
// always holds a literal its matches contain). Per event each field used
// by a clause is scanned once for all literals of all rules (hash tables
// keyed by a literal's first 4 bytes, or 2 for short ones, probed at each
// position of the folded value), and a rule whose clause has no hit is
// rejected without running its detection logic.

import (
	"github.com/loupe-sec/loupe/internal/source"
	"math/bits"
	"slices"

	"github.com/loupe-sec/loupe/internal/detect"
)

// minPreLiteral is the shortest literal worth indexing.
const minPreLiteral = 2

// fieldLits holds the literals of one field.
type fieldLits struct {
	n    int // index in Ruleset.pre
	acc  *accessor
	lits []string // folded
	ids  []int32  // global literal id per lits entry
	// With many literals, two hash tables replace the per-literal search:
	// literals of 4 bytes or more by their first 4 bytes, shorter ones by
	// their first 2; nil when few literals.
	long, short *litTable
	byLit       map[string]int
}

// preLit is one alternative of a rule's clause.
type preLit struct {
	f  *fieldLits
	id int32
}

// clause is a disjunction of (field, literal) a match must satisfy.
type clause []clauseLit

type clauseLit struct {
	acc *accessor
	lit string
}

func (c clause) cost() int {
	n := 0
	for _, l := range c {
		n += 64 / len(l.lit)
	}
	return n
}

func better(a, b clause) clause {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	case b.cost() < a.cost():
		return b
	}
	return a
}

// need returns a clause every match of c satisfies, or nil.
func (r *Rule) need(c *cond) clause {
	switch c.op {
	case opRef:
		var out clause
		for _, alt := range r.searches[c.search].alts {
			var best clause
			for _, t := range alt {
				best = better(best, testClause(t))
			}
			if best == nil {
				return nil
			}
			out = append(out, best...)
		}
		return out
	case opAnd:
		var best clause
		for _, k := range c.kids {
			best = better(best, r.need(k))
		}
		return best
	case opOr:
		var out clause
		for _, k := range c.kids {
			n := r.need(k)
			if n == nil {
				return nil
			}
			out = append(out, n...)
		}
		return out
	}
	return nil
}

// testClause is the literal clause of one field test, or nil.
// A keyword test's clause has no accessor: its literals are looked for in
// the whole text of the event.
func testClause(t *fieldTest) clause {
	if t.kind != tStr || t.null || len(t.pats) == 0 || (t.acc != nil && t.acc.name == "EventID") {
		return nil
	}
	var out clause
	for i := range t.pats {
		lit := t.pats[i].literal()
		if t.cased {
			lit = fold(lit)
		}
		if len(lit) < minPreLiteral {
			if t.all {
				continue // another value of the |all list may give one
			}
			return nil
		}
		c := clauseLit{acc: t.acc, lit: lit}
		if t.all { // every value must match: the longest literal is enough
			if len(out) == 0 || len(lit) > len(out[0].lit) {
				out = clause{c}
			}
			continue
		}
		out = append(out, c)
	}
	return out
}

// prefilter builds the literal tables and each rule's clause.
type prefilter struct {
	fields []*fieldLits
	byAcc  map[*accessor]*fieldLits
	nextID int32
}

// maxMoreClauses bounds the extra clauses checked per rule.
const maxMoreClauses = 4

// clauses returns clauses that must all hold for c to match: one per
// required field test of an AND, or one joint clause for an OR.
func (r *Rule) clauses(c *cond) []clause {
	switch c.op {
	case opAnd:
		var out []clause
		for _, k := range c.kids {
			out = append(out, r.clauses(k)...)
		}
		return out
	case opRef:
		if alts := r.searches[c.search].alts; len(alts) == 1 {
			var out []clause
			for _, t := range alts[0] {
				if tc := testClause(t); tc != nil {
					out = append(out, tc)
				}
			}
			return out
		}
	}
	if n := r.need(c); n != nil {
		return []clause{n}
	}
	return nil
}

func (p *prefilter) add(r *Rule) {
	cls := r.clauses(r.cond)
	if len(cls) == 0 {
		return
	}
	// The cheapest clause indexes the rule; a few others are checked
	// before its detection runs.
	best := 0
	for i, c := range cls {
		if c.cost() < cls[best].cost() {
			best = i
		}
	}
	r.pre = p.lits(cls[best])
	for i, c := range cls {
		if i != best && len(r.more) < maxMoreClauses {
			r.more = append(r.more, p.lits(c))
		}
	}
}

// lits registers a clause's literals and returns their ids.
func (p *prefilter) lits(c clause) []preLit {
	if p.byAcc == nil {
		p.byAcc = map[*accessor]*fieldLits{}
	}
	var out []preLit
	for _, cl := range c {
		f := p.byAcc[cl.acc]
		if f == nil {
			f = &fieldLits{n: len(p.fields), acc: cl.acc, byLit: map[string]int{}}
			p.byAcc[cl.acc] = f
			p.fields = append(p.fields, f)
		}
		i, ok := f.byLit[cl.lit]
		if !ok {
			i = len(f.lits)
			f.byLit[cl.lit] = i
			f.lits = append(f.lits, cl.lit)
			f.ids = append(f.ids, p.nextID)
			p.nextID++
		}
		pl := preLit{f: f, id: f.ids[i]}
		if !slices.Contains(out, pl) {
			out = append(out, pl)
		}
	}
	return out
}

// clauseHolds reports whether one of a clause's literals occurs (or its
// field cannot be told, being an array).
func (x *Engine) clauseHolds(c []preLit) bool {
	s := &x.pre
	for _, pl := range c {
		f := pl.f
		if s.scanned[f.n] != x.gen {
			x.scan(f)
		}
		if s.open[f.n] || s.hits[pl.id>>6]&(1<<(pl.id&63)) != 0 {
			return true
		}
	}
	return false
}

// moreHold checks a rule's extra clauses.
func (x *Engine) moreHold(r *Rule) bool {
	for _, c := range r.more {
		if !x.clauseHolds(c) {
			return false
		}
	}
	return true
}

// bucketMin is the literal count from which a field gets a bucket table
// instead of one substring search per literal.
const bucketMin = 12

func (p *prefilter) finish() {
	for _, f := range p.fields {
		f.byLit = nil
		if len(f.lits) < bucketMin {
			continue
		}
		for i := len(f.lits) - 1; i >= 0; i-- {
			l := f.lits[i]
			t := &f.short
			if len(l) >= 4 {
				t = &f.long
			}
			if *t == nil {
				*t = &litTable{head: make([]int32, litSlots), next: make([]int32, len(f.lits)), key: make([]uint32, len(f.lits))}
			}
			(*t).add(i, l)
		}
	}
}

// litSlots is the size of a literal hash table (a power of two).
const litSlots = 1 << 14

// litTable chains literals by a hash of their first 2 or 4 bytes.
type litTable struct {
	bits [litSlots / 64]uint64 // slot occupied (2 KiB, stays in cache)
	head []int32               // per slot: first literal (index+1)
	next []int32               // per literal: next in its slot's chain (index+1)
	key  []uint32              // per literal: its first bytes, little-endian
}

func litKey(s string) uint32 {
	if len(s) >= 4 {
		return uint32(s[0]) | uint32(s[1])<<8 | uint32(s[2])<<16 | uint32(s[3])<<24
	}
	return uint32(s[0]) | uint32(s[1])<<8
}

func litSlot(k uint32) uint32 { return (k * 2654435761) >> (32 - 14) }

func (t *litTable) add(i int, l string) {
	k := litKey(l)
	h := litSlot(k)
	t.key[i] = k
	t.next[i] = t.head[h]
	t.head[h] = int32(i + 1)
	t.bits[h>>6] |= 1 << (h & 63)
}

// preState is an engine's per-event prefilter state.
type preState struct {
	scanned []uint32 // per field: gen when scanned
	open    []bool   // per field: value not scannable (array), every literal counts as hit
	hits    []uint64 // literal bit set
	set     []int32  // words of hits set this event, to clear
}

func (s *preState) init(rs *Ruleset) {
	s.scanned = make([]uint32, len(rs.pre.fields))
	s.open = make([]bool, len(rs.pre.fields))
	s.hits = make([]uint64, (rs.pre.nextID+63)/64)
}

func (x *Engine) clearHits() {
	s := &x.pre
	for _, w := range s.set {
		s.hits[w] = 0
	}
	s.set = s.set[:0]
}

func (x *Engine) hit(id int32) {
	s := &x.pre
	w := id >> 6
	if s.hits[w] == 0 {
		s.set = append(s.set, w)
	}
	s.hits[w] |= 1 << (id & 63)
}

// passes reports whether r's clauses hold in the current event.
func (x *Engine) passes(r *Rule) bool {
	return r.pre == nil || (x.clauseHolds(r.pre) && x.moreHold(r))
}

// scan finds which of f's literals occur in the field's folded value.
func (x *Engine) scan(f *fieldLits) {
	s := &x.pre
	s.scanned[f.n] = x.gen
	s.open[f.n] = false
	if f.acc == nil {
		x.scanText(f)
		return
	}
	v := x.value(f.acc)
	if !v.ok || v.null {
		return
	}
	if v.arr {
		s.open[f.n] = true
		return
	}
	x.scanLow(f, x.low(v))
}

// scanText finds the keyword literals that occur in the event's text: the
// message, the command line and the record with its escapes decoded,
// which holds every string value of the record as a substring.
func (x *Engine) scanText(f *fieldLits) {
	x.foldText()
	x.scanLow(f, x.msgLow)
	x.scanLow(f, x.cmdLow)
	if x.raw == "" {
		return
	}
	start := len(x.arena)
	x.arena = source.AppendUnescaped(x.arena, x.raw)
	text := x.arenaString(start)
	if needsFold(text) {
		mid := len(x.arena)
		x.arena = appendFold(x.arena, text)
		text = x.arenaString(mid)
	}
	x.scanLow(f, text)
}

// scanLow marks the literals of f that occur in low.
func (x *Engine) scanLow(f *fieldLits, low string) {
	if f.short == nil && f.long == nil {
		for i, l := range f.lits {
			if containsStr(low, l) {
				x.hit(f.ids[i])
			}
		}
		return
	}
	short, long := f.short, f.long
	for i := 0; i+1 < len(low); i++ {
		k := uint32(low[i]) | uint32(low[i+1])<<8
		if short != nil {
			if h := litSlot(k); short.bits[h>>6]&(1<<(h&63)) != 0 {
				for j := short.head[h]; j != 0; j = short.next[j-1] {
					if l := f.lits[j-1]; short.key[j-1] == k && len(low)-i >= len(l) && low[i+2:i+len(l)] == l[2:] {
						x.hit(f.ids[j-1])
					}
				}
			}
		}
		if long != nil && i+4 <= len(low) {
			k |= uint32(low[i+2])<<16 | uint32(low[i+3])<<24
			if h := litSlot(k); long.bits[h>>6]&(1<<(h&63)) != 0 {
				for j := long.head[h]; j != 0; j = long.next[j-1] {
					if l := f.lits[j-1]; long.key[j-1] == k && len(low)-i >= len(l) && low[i+4:i+len(l)] == l[4:] {
						x.hit(f.ids[j-1])
					}
				}
			}
		}
	}
}

// bucket is one set of candidate rules (a channel and event id, or a
// family). Rules with a clause are reached through the literals their
// clause names, so a rule none of whose literals occurs is never touched.
type bucket struct {
	always []*Rule           // rules without a clause, in load order
	byLit  map[int32][]*Rule // literal id → rules whose clause names it
	fields []*fieldLits      // fields to scan for the clauses
	gated  []*Rule           // rules with a clause, for the fallback
}

func (b *bucket) add(r *Rule) {
	if r.pre == nil {
		b.always = append(b.always, r)
		return
	}
	if b.byLit == nil {
		b.byLit = map[int32][]*Rule{}
	}
	b.gated = append(b.gated, r)
	for _, pl := range r.pre {
		b.byLit[pl.id] = append(b.byLit[pl.id], r)
		if !slices.Contains(b.fields, pl.f) {
			b.fields = append(b.fields, pl.f)
		}
	}
}

// run evaluates the rules of b that can match the current event.
func (x *Engine) run(b *bucket, emit func(detect.Detection)) {
	if b == nil {
		return
	}
	s := &x.pre
	open := false
	for _, f := range b.fields {
		if s.scanned[f.n] != x.gen {
			x.scan(f)
		}
		open = open || s.open[f.n]
	}
	for _, r := range b.always {
		x.try(r, emit)
	}
	if open { // an array value: literal hits do not tell; test every clause
		for _, r := range b.gated {
			if x.stamp[r.index] != x.gen && x.passes(r) {
				x.stamp[r.index] = x.gen
				x.try(r, emit)
			}
		}
		return
	}
	for _, w := range s.set {
		for word := s.hits[w]; word != 0; word &= word - 1 {
			id := w<<6 | int32(bits.TrailingZeros64(word))
			for _, r := range b.byLit[id] {
				if x.stamp[r.index] != x.gen {
					x.stamp[r.index] = x.gen
					if x.moreHold(r) {
						x.try(r, emit)
					}
				}
			}
		}
	}
}
