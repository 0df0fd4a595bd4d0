package sigma

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options tune loading.
type Options struct {
	// Mapping overrides the built-in field mapping; nil keeps it.
	Mapping *Mapping
	// Placeholders are the values of %name% placeholders for the expand
	// modifier (default: those of Mapping); a rule using one not listed is
	// reported unsupported.
	Placeholders map[string][]string
	// MaxTracked bounds correlation groups per correlation rule and
	// stream. 0 = 10000.
	MaxTracked int
}

// Problem is a rule file or rule that did not load, with the reason.
type Problem struct {
	File        string `json:"file"`
	Document    int    `json:"document,omitempty"` // 1-based; 0 for the whole file
	Title       string `json:"title,omitempty"`
	ID          string `json:"id,omitempty"`
	Product     string `json:"product,omitempty"` // logsource product, when the rule got that far
	Unsupported bool   `json:"unsupported"`       // valid Sigma that loupe does not evaluate; false: invalid rule or file
	Reason      string `json:"reason"`
}

// Category is the reason's kind for counting: the text before the first
// colon of an unsupported reason ("modifier", "regex", ...), or "invalid".
func (p Problem) Category() string {
	if !p.Unsupported {
		return "invalid"
	}
	if c, _, ok := strings.Cut(p.Reason, ":"); ok {
		return c
	}
	return p.Reason
}

func (p Problem) String() string {
	loc := p.File
	if p.Document > 0 {
		loc += fmt.Sprintf("#%d", p.Document)
	}
	name := p.Title
	if p.ID != "" {
		name += " (" + p.ID + ")"
	}
	kind := "invalid"
	if p.Unsupported {
		kind = "unsupported"
	}
	return fmt.Sprintf("%s: %s: %s: %s", loc, name, kind, p.Reason)
}

// Ruleset is a compiled, immutable set of Sigma rules, safe to share
// between streams; each stream evaluates it through its own Engine.
type Ruleset struct {
	Rules    []*Rule   // loaded rules, detection and correlation, in file order
	Problems []Problem // rules and files that did not load
	Files    int       // rule files read
	LoadTime time.Duration

	acc        accessors
	win        winIndex
	byFam      [numFam]*bucket
	corrs      []*correlation
	maxTracked int
	pre        prefilter
}

// Load reads every .yml/.yaml file under dir (or the one file dir names)
// and compiles the rules. Rules that cannot be loaded are listed in
// Problems, never dropped silently; the error is only for an unreadable
// directory.
func Load(dir string, opt Options) (*Ruleset, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("sigma rules: %w", err)
	}
	if !fi.IsDir() {
		return LoadFS(os.DirFS(filepath.Dir(dir)), []string{filepath.Base(dir)}, opt)
	}
	return LoadFS(os.DirFS(dir), nil, opt)
}

// LoadFS loads the named files of fsys, or every rule file under its
// root when names is nil.
func LoadFS(fsys fs.FS, names []string, opt Options) (*Ruleset, error) {
	start := time.Now()
	if names == nil {
		err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if p != "." && strings.HasPrefix(d.Name(), ".") {
					return fs.SkipDir
				}
				return nil
			}
			if ext := strings.ToLower(filepath.Ext(p)); ext == ".yml" || ext == ".yaml" {
				names = append(names, p)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("sigma rules: %w", err)
		}
	}
	sort.Strings(names)
	// Files are read and parsed as YAML in parallel; compiling, which
	// interns fields and links rules, stays in file order.
	parsed := make([]parsedFile, len(names))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(names)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(names) {
					return
				}
				data, err := fs.ReadFile(fsys, names[i])
				if err != nil {
					parsed[i].err = err
					continue
				}
				parsed[i].docs, parsed[i].err = parseDocuments(data)
				if parsed[i].err != nil {
					parsed[i].err = fmt.Errorf("YAML: %w", parsed[i].err)
				}
			}
		})
	}
	wg.Wait()
	b := newBuilder(opt)
	for i, name := range names {
		b.addParsed(name, parsed[i].docs, parsed[i].err)
	}
	rs := b.build()
	rs.LoadTime = time.Since(start)
	return rs, nil
}

// Parse compiles the rules of one file's content (for tests and fuzzing).
func Parse(name string, data []byte, opt Options) *Ruleset {
	b := newBuilder(opt)
	b.addFile(name, data)
	return b.build()
}

type builder struct {
	rs  *Ruleset
	ctx compileCtx
}

func newBuilder(opt Options) *builder {
	rs := &Ruleset{maxTracked: opt.MaxTracked}
	if rs.maxTracked <= 0 {
		rs.maxTracked = defaultMaxTracked
	}
	rs.acc.mapping = opt.Mapping
	ph := opt.Placeholders
	if ph == nil && opt.Mapping != nil {
		ph = opt.Mapping.Placeholders
	}
	return &builder{rs: rs, ctx: compileCtx{acc: &rs.acc, placeholders: ph}}
}

func (b *builder) problem(p Problem) { b.rs.Problems = append(b.rs.Problems, p) }

type parsedFile struct {
	docs []document
	err  error
}

func (b *builder) addFile(name string, data []byte) {
	docs, err := parseDocuments(data)
	if err != nil {
		err = fmt.Errorf("YAML: %w", err)
	}
	b.addParsed(name, docs, err)
}

func (b *builder) addParsed(name string, docs []document, err error) {
	b.rs.Files++
	if err != nil {
		b.problem(Problem{File: name, Reason: err.Error()})
	}
	for _, d := range docs {
		r := &Rule{File: name, Document: d.index + 1}
		if err := b.compile(r, d.node); err != nil {
			b.problem(problemOf(r, err))
			continue
		}
		b.rs.Rules = append(b.rs.Rules, r)
	}
}

func (b *builder) compile(r *Rule, n *ynode) error {
	r.Title = strings.TrimSpace(n.get("title").str())
	r.ID = n.get("id").str()
	if err := parseMeta(n, r); err != nil {
		return err
	}
	if cn := n.get("correlation"); cn != nil {
		if cn.kind != kMap {
			return fmt.Errorf("correlation is %s, not a mapping", describe(cn))
		}
		c, err := compileCorrelation(r, cn)
		if err != nil {
			return err
		}
		r.Correlation = c.kind
		r.corrs = []*correlation{c} // its own definition until build links it
		r.generate = true           // unless a correlation reads it (chains)
		return nil
	}
	if err := r.compileDetection(&b.ctx, n.get("detection")); err != nil {
		return err
	}
	r.filter = filterOf(r.Logsource)
	r.generate = true
	if r.filter.has(famWindows) {
		ids := r.requiredEventIDs(r.cond)
		switch {
		case ids == nil:
			ids = r.filter.eventIDs
		case r.filter.eventIDs != nil:
			ids = intersect(ids, r.filter.eventIDs)
		}
		if ids != nil && len(ids) == 0 {
			return unsupportedf("logsource: the detection's EventID values exclude every event of logsource %s", r.Logsource)
		}
		r.eventIDs = ids
	}
	return nil
}

// build links correlations to the rules they name — base rules, or
// correlations linked before them (chains) — and indexes the rules.
func (b *builder) build() *Ruleset {
	rs := b.rs
	byRef := map[string]*Rule{}
	name := func(r *Rule) {
		for _, k := range []string{r.Name, r.ID} {
			if k != "" {
				byRef[k] = r
			}
		}
	}
	var pending []*Rule
	for _, r := range rs.Rules {
		if r.Correlation == "" {
			name(r)
			continue
		}
		r.def, r.corrs = r.corrs[0], nil
		pending = append(pending, r)
	}
	// Link in rounds: a correlation whose rules are all known now; a chain
	// links one level per round, and what is left names a rule that did
	// not load, or a cycle.
	linked := map[*Rule]bool{}
	for progress := true; progress; {
		progress = false
		rest := pending[:0]
		for _, r := range pending {
			c := r.def
			refs, err := b.refsOf(c, byRef)
			if refs == nil && err == nil {
				rest = append(rest, r)
				continue
			}
			progress = true
			if err != nil {
				b.problem(problemOf(r, err))
				continue
			}
			c.refs = refs
			c.index = len(rs.corrs)
			rs.corrs = append(rs.corrs, c)
			c.resolveFields(&rs.acc)
			for _, ref := range c.refs {
				if !slices.Contains(ref.corrs, c) {
					ref.corrs = append(ref.corrs, c)
				}
			}
			linked[r] = true
			name(r)
		}
		pending = rest
	}
	for _, r := range pending {
		for _, n := range r.def.refNames {
			if _, ok := byRef[n]; !ok {
				b.problem(problemOf(r, b.missingRef(n, pending)))
				break
			}
		}
	}
	kept := rs.Rules[:0]
	for _, r := range rs.Rules {
		if r.Correlation == "" || linked[r] {
			kept = append(kept, r)
		}
	}
	rs.Rules = kept
	// A rule referenced by correlations emits its own matches only when
	// one of them asks for it (generate: true).
	for _, r := range rs.Rules {
		if len(r.corrs) > 0 {
			r.generate = false
			for _, c := range r.corrs {
				r.generate = r.generate || c.generate
			}
		}
	}
	for i, r := range rs.Rules {
		r.index = i
		if r.Correlation != "" {
			continue
		}
		rs.pre.add(r)
		for f := range numFam {
			if !r.filter.has(family(f)) {
				continue
			}
			if family(f) == famWindows {
				rs.win.add(r)
				continue
			}
			if rs.byFam[f] == nil {
				rs.byFam[f] = &bucket{}
			}
			rs.byFam[f].add(r)
		}
	}
	rs.pre.finish()
	return rs
}

// problemOf describes why r did not load; an unsupported construct is
// reported by its own reason so the categories count cleanly.
func problemOf(r *Rule, err error) Problem {
	p := Problem{File: r.File, Document: r.Document, Title: r.Title, ID: r.ID, Product: r.Logsource.Product, Reason: err.Error()}
	var u *unsupported
	if errors.As(err, &u) {
		p.Unsupported, p.Reason = true, u.reason
	}
	return p
}

// winIndex finds the candidate Windows rules of an event by channel and
// event id, so no rule is tested against a channel or id it cannot match.
type winIndex struct {
	chans map[string]int    // folded channel name → id (1-based)
	byEID []map[int]*bucket // per channel id (0: rules for any channel)
	any   []*bucket         // per channel id: rules for any event id
}

func (w *winIndex) channel(name string) int {
	if w.chans == nil {
		w.chans = map[string]int{}
		w.byEID = []map[int]*bucket{{}}
		w.any = []*bucket{{}}
	}
	if name == "" {
		return 0
	}
	k := fold(name)
	id, ok := w.chans[k]
	if !ok {
		id = len(w.byEID)
		w.chans[k] = id
		w.byEID = append(w.byEID, map[int]*bucket{})
		w.any = append(w.any, &bucket{})
	}
	return id
}

func (w *winIndex) add(r *Rule) {
	chans := r.filter.channels
	if chans == nil {
		chans = []string{""}
	}
	for _, ch := range chans {
		c := w.channel(ch)
		if r.eventIDs == nil {
			w.any[c].add(r)
			continue
		}
		for _, id := range r.eventIDs {
			b := w.byEID[c][id]
			if b == nil {
				b = &bucket{}
				w.byEID[c][id] = b
			}
			b.add(r)
		}
	}
}

// refsOf resolves the rules a correlation names: nil, nil while one of
// them is not known yet; an error when one cannot feed it.
func (b *builder) refsOf(c *correlation, byRef map[string]*Rule) ([]*Rule, error) {
	var refs []*Rule
	for _, n := range c.refNames {
		ref, ok := byRef[n]
		if !ok {
			return nil, nil
		}
		if ref.def != nil && ref.def.atClose {
			return nil, unsupportedf("correlation: chained on %s, whose condition (an upper bound or neq) is only decided when its window closes", n)
		}
		refs = append(refs, ref)
	}
	return refs, nil
}

// missingRef says why a rule a correlation names is not there.
func (b *builder) missingRef(name string, pending []*Rule) error {
	for _, p := range b.rs.Problems {
		if p.ID == name {
			return unsupportedf("correlation: referenced rule %s did not load (%s)", name, p.Reason)
		}
	}
	for _, r := range pending {
		if r.Name == name || r.ID == name {
			return fmt.Errorf("correlation: %s is a correlation in a cycle of correlations", name)
		}
	}
	return fmt.Errorf("correlation: unknown rule %q", name)
}

// Counts returns how many rules loaded and how many problems there are
// per category.
func (rs *Ruleset) Counts() (loaded int, byCategory map[string]int) {
	byCategory = map[string]int{}
	for _, p := range rs.Problems {
		byCategory[p.Category()]++
	}
	return len(rs.Rules), byCategory
}

// Rule returns a loaded rule by id or name.
func (rs *Ruleset) Rule(id string) *Rule {
	for _, r := range rs.Rules {
		if r.ID == id || (r.Name != "" && r.Name == id) {
			return r
		}
	}
	return nil
}
