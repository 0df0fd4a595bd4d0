package sigma

import (
	"github.com/loupe-sec/loupe/internal/source"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/loupe-sec/loupe/internal/detect"
	"github.com/loupe-sec/loupe/internal/event"
	"github.com/tidwall/gjson"
)

// Engine evaluates a Ruleset over one stream of events. It holds the
// per-event scratch space and the correlation state of that stream; the
// Ruleset it reads is shared and never modified. Not safe for concurrent
// use: make one Engine per stream.
type Engine struct {
	rs *Ruleset

	ev       *event.Event
	fam      family
	eventID  int    // the event's Windows event id (typed, or of a flat record)
	channel  string // its Windows channel, likewise
	raw      string
	gen      uint32
	vals     []fieldVal
	arena    []byte
	dataKV   []dataMember // members of the event's data object, read once per event
	dataDone bool
	dataTop  bool         // the data object is the record itself: dataKV is topKV
	topKV    []dataMember // members of the record's top-level object, likewise
	topDone  bool
	textDone bool // msgLow and cmdLow hold the folded message and command line
	msgLow   string
	cmdLow   string

	object matchObject // what this event's matches are about, once set

	corr  *corrState
	pre   preState
	stamp []uint32 // per rule: gen when evaluated for the current event
}

// fieldVal is one field of the current event, read at most once per
// event. low is the case-folded value, made on first use.
type fieldVal struct {
	gen     uint32
	ok      bool // present
	null    bool // present as JSON null
	arr     bool // a JSON array; res holds it
	lowDone bool
	s, low  string
	res     gjson.Result
}

// NewEngine returns an engine for one stream over rs.
func (rs *Ruleset) NewEngine() *Engine {
	x := &Engine{
		rs:    rs,
		vals:  make([]fieldVal, len(rs.acc.list)),
		arena: make([]byte, 0, 4096),
		corr:  newCorrState(rs),
	}
	x.pre.init(rs)
	x.stamp = make([]uint32, len(rs.Rules))
	return x
}

// Observe tests ev against the candidate rules of its kind and calls emit
// for each match (and each correlation that fires).
func (x *Engine) Observe(ev *event.Event, emit func(detect.Detection)) {
	if ev == nil || x.rs == nil {
		return
	}
	x.begin(ev)
	rs := x.rs
	if x.fam == famWindows {
		w := &rs.win
		if len(w.byEID) > 0 {
			x.run(w.byEID[0][x.eventID], emit)
			x.run(w.any[0], emit)
			if c := x.channelID(); c != 0 {
				x.run(w.byEID[c][x.eventID], emit)
				x.run(w.any[c], emit)
			}
		}
	} else {
		x.run(rs.byFam[x.fam], emit)
	}
	x.ev = nil
	x.raw = ""
}

// Flush decides the correlations whose condition waits for the end of a
// window (upper bounds, neq), then releases the correlation state.
func (x *Engine) Flush(emit func(detect.Detection)) {
	x.corr.flush(x, emit)
	x.corr = newCorrState(x.rs)
}

func (x *Engine) begin(ev *event.Event) {
	x.ev = ev
	x.fam = familyOf(ev)
	x.eventID, x.channel = ev.EventID, ev.Channel
	x.gen++
	if x.gen == 0 { // wrapped: clear so no stale value looks current
		for i := range x.vals {
			x.vals[i].gen = 0
		}
		clear(x.stamp)
		clear(x.pre.scanned)
		x.gen = 1
	}
	x.arena = x.arena[:0]
	x.raw = ""
	if len(ev.Raw) > 0 {
		x.raw = unsafe.String(unsafe.SliceData(ev.Raw), len(ev.Raw))
	}
	x.dataKV, x.dataDone, x.dataTop = x.dataKV[:0], false, false
	x.topKV, x.topDone = x.topKV[:0], false
	x.textDone = false
	if x.fam == famJSON && x.raw != "" {
		x.flatWindows()
	}
	x.clearHits()
}

// flatWindows recognises a Windows record flattened into one JSON object
// ({"EventID": 4688, "Channel": "Security", "NewProcessName": ...}, as
// some exporters write it): it is then evaluated as a Windows event whose
// data fields are the object's members.
func (x *Engine) flatWindows() {
	it := newObjIter(x.raw)
	id, channel := 0, ""
	for n := 0; n < 64; n++ {
		k, v, ok := it.next()
		if !ok {
			break
		}
		switch k {
		case "EventID":
			if len(v) > 0 && v[0] == '"' {
				v = v[1 : len(v)-1]
			}
			id, _ = strconv.Atoi(v)
		case "Channel":
			if len(v) > 1 && v[0] == '"' && !hasEscape(v) {
				channel = v[1 : len(v)-1]
			}
		}
	}
	if id > 0 && channel != "" {
		x.fam, x.eventID, x.channel = famWindows, id, channel
	}
}

// Match reports whether rule r matches ev, ignoring correlations; for
// tests and tools.
func (x *Engine) Match(r *Rule, ev *event.Event) bool {
	if r.cond == nil {
		return false
	}
	x.begin(ev)
	defer func() { x.ev, x.raw = nil, "" }()
	return x.sourceOK(r) && x.eval(r, r.cond)
}

func (x *Engine) sourceOK(r *Rule) bool {
	f := &r.filter
	if !f.has(x.fam) {
		return false
	}
	switch x.fam {
	case famWindows:
		if f.eventIDs != nil && !containsInt(f.eventIDs, x.eventID) {
			return false
		}
		return f.channelOK(x.channel)
	case famSyslog:
		return f.programOK(x.ev.Program)
	}
	return true
}

func containsInt(list []int, n int) bool {
	for _, x := range list {
		if x == n {
			return true
		}
	}
	return false
}

// channelID is the index id of the event's channel, 0 when no rule names it.
func (x *Engine) channelID() int {
	ch := x.channel
	if ch == "" {
		return 0
	}
	if id, ok := x.rs.win.chans[ch]; ok {
		return id
	}
	start := len(x.arena)
	x.arena = appendFold(x.arena, ch)
	id := x.rs.win.chans[string(x.arena[start:])]
	x.arena = x.arena[:start]
	return id
}

func (x *Engine) try(r *Rule, emit func(detect.Detection)) {
	if x.fam == famSyslog && !r.filter.programOK(x.ev.Program) {
		return
	}
	if !x.eval(r, r.cond) {
		return
	}
	if r.generate {
		if x.object.gen != x.gen {
			x.object.set(x.ev)
			x.object.gen = x.gen
		}
		emit(r.detectionOf(x.ev, &x.object))
	}
	for _, c := range r.corrs {
		x.corr.observe(x, c, r, emit)
	}
}

func (x *Engine) eval(r *Rule, c *cond) bool {
	switch c.op {
	case opRef:
		return x.search(r.searches[c.search])
	case opAnd:
		for _, k := range c.kids {
			if !x.eval(r, k) {
				return false
			}
		}
		return true
	case opOr:
		for _, k := range c.kids {
			if x.eval(r, k) {
				return true
			}
		}
		return false
	case opNot:
		return !x.eval(r, c.kids[0])
	}
	return false
}

func (x *Engine) search(s *search) bool {
alts:
	for _, alt := range s.alts {
		for _, t := range alt {
			if !x.test(t) {
				continue alts
			}
		}
		return true
	}
	return false
}

func (x *Engine) test(t *fieldTest) bool {
	if t.acc == nil {
		return x.keyword(t)
	}
	v := x.value(t.acc)
	if t.kind == tExists {
		return (v.ok && !v.null) == t.exists
	}
	if !v.ok || v.null {
		return t.null
	}
	if v.arr {
		found := false
		v.res.ForEach(func(_, el gjson.Result) bool {
			s := el.String()
			found = x.testValue(t, s, x.foldTemp(s))
			return !found
		})
		return found
	}
	low := ""
	if !t.cased && (t.kind == tStr || t.kind == tRef) {
		low = x.low(v)
	}
	return x.testValue(t, v.s, low)
}

// testValue tests one present value; low is s folded (when the test is
// case-insensitive).
func (x *Engine) testValue(t *fieldTest, s, low string) bool {
	switch t.kind {
	case tStr:
		target := low
		if t.cased {
			target = s
		}
		if t.all {
			for i := range t.pats {
				if !t.pats[i].match(target) {
					return false
				}
			}
			return len(t.pats) > 0
		}
		for i := range t.pats {
			if t.pats[i].match(target) {
				return true
			}
		}
		return false
	case tRe:
		if t.all {
			for _, re := range t.res {
				if !re.MatchString(s) {
					return false
				}
			}
			return true
		}
		for _, re := range t.res {
			if re.MatchString(s) {
				return true
			}
		}
		return false
	case tCIDR:
		a, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil {
			return false
		}
		a = a.Unmap().WithZone("")
		for _, p := range t.nets {
			if p.Contains(a) {
				return true
			}
		}
		return false
	case tNum:
		n, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return false
		}
		for _, want := range t.nums {
			var ok bool
			switch t.numOp {
			case "gt":
				ok = n > want
			case "gte":
				ok = n >= want
			case "lt":
				ok = n < want
			case "lte":
				ok = n <= want
			}
			if ok != t.all {
				return ok
			}
		}
		return t.all
	case tRef:
		o := x.value(t.ref)
		if !o.ok || o.null || o.arr {
			return false
		}
		a, b := s, o.s
		if !t.cased {
			a, b = low, x.low(o)
		}
		switch t.refOp {
		case patPrefix:
			return strings.HasPrefix(a, b)
		case patSuffix:
			return strings.HasSuffix(a, b)
		case patContains:
			return strings.Contains(a, b)
		}
		return a == b
	}
	return false
}

// keyword tests a keyword search against the event's text: its message,
// its command line and every string value of the record.
func (x *Engine) keyword(t *fieldTest) bool {
	if t.all && t.kind == tStr {
		for i := range t.pats {
			p := &t.pats[i]
			if !x.anyText(func(s, low string) bool {
				if t.cased {
					return p.match(s)
				}
				return p.match(low)
			}) {
				return false
			}
		}
		return true
	}
	return x.anyText(func(s, low string) bool { return x.testValue(t, s, low) })
}

// foldText folds the message and command line, once per event.
func (x *Engine) foldText() {
	if !x.textDone {
		x.textDone = true
		x.msgLow = x.foldTemp(x.ev.Message)
		x.cmdLow = x.foldTemp(x.ev.CommandLine)
	}
}

// anyText calls f on each text of the event until it returns true.
func (x *Engine) anyText(f func(s, low string) bool) bool {
	ev := x.ev
	x.foldText()
	if ev.Message != "" && f(ev.Message, x.msgLow) {
		return true
	}
	if ev.CommandLine != "" && ev.CommandLine != ev.Message && f(ev.CommandLine, x.cmdLow) {
		return true
	}
	if x.raw == "" {
		return false
	}
	found := false
	var walk func(r gjson.Result, depth int) bool
	walk = func(r gjson.Result, depth int) bool {
		r.ForEach(func(_, v gjson.Result) bool {
			switch {
			case v.IsObject() || v.IsArray():
				if depth < 16 {
					walk(v, depth+1)
				}
			case v.Type == gjson.String:
				s := v.Str
				if s != ev.Message && s != ev.CommandLine && f(s, x.foldTemp(s)) {
					found = true
				}
			}
			return !found
		})
		return found
	}
	return walk(gjson.Parse(x.raw), 0)
}

// value reads a field of the current event, once per event.
func (x *Engine) value(a *accessor) *fieldVal {
	fv := &x.vals[a.id]
	if fv.gen == x.gen {
		return fv
	}
	*fv = fieldVal{gen: x.gen}
	for _, src := range a.srcs[x.fam] {
		switch src.kind {
		case srcEvent:
			if s := x.typed(src.ef); s != "" {
				fv.ok, fv.s = true, s
				return fv
			}
		case srcPath:
			if x.raw != "" && x.path(fv, &src) {
				return fv
			}
		case srcData:
			for _, m := range x.data() {
				if m.key == src.path {
					x.setRaw(fv, m.val)
					return fv
				}
			}
		case srcKV:
			if s, ok := kvLookup(x.ev.Message, src.path); ok {
				fv.ok, fv.s = true, s
				return fv
			}
		}
	}
	return fv
}

func setResult(fv *fieldVal, r gjson.Result) bool {
	if !r.Exists() {
		return false
	}
	fv.ok = true
	switch {
	case r.Type == gjson.Null:
		fv.null = true
	case r.IsArray():
		fv.arr, fv.res = true, r
	case r.Type == gjson.JSON:
		fv.s = r.Raw
	default:
		fv.s = r.String()
	}
	return true
}

// dataMember is one member of an event's data object, as raw JSON.
type dataMember struct {
	key string
	val string
}

// setRaw sets a field from a raw JSON value; strings with escapes are
// decoded into the arena.
func (x *Engine) setRaw(fv *fieldVal, raw string) {
	fv.ok = true
	switch raw[0] {
	case '"':
		body := raw[1 : len(raw)-1]
		if !hasEscape(body) {
			fv.s = body
			return
		}
		start := len(x.arena)
		x.arena = source.AppendUnescaped(x.arena, body)
		fv.s = x.arenaString(start)
	case 'n':
		fv.null = true
	case '[':
		fv.arr, fv.res = true, gjson.Parse(raw)
	default:
		fv.s = raw
	}
}

// data returns the members of the event's data object (EventData,
// output_fields, ...; the whole record when it has none), parsed once per
// event so each field lookup is a short scan instead of a JSON parse.
func (x *Engine) data() []dataMember {
	if x.dataDone {
		if x.dataTop {
			return x.topKV
		}
		return x.dataKV
	}
	x.dataDone = true
	if x.raw == "" {
		return nil
	}
	obj := x.raw
	if o := x.ev.DataObject; o != "" {
		obj = o
	} else if p := x.ev.DataPath; p != "" {
		if r := gjson.Get(x.raw, p); r.IsObject() {
			obj = r.Raw
		}
	}
	if obj == x.raw { // no data object: the record's own members, read once
		x.dataTop = true
		return x.top()
	}
	x.dataKV = appendMembers(x.dataKV, obj)
	return x.dataKV
}

// path reads the value at a gjson path of the record into fv. A plain
// path starts from the record's top-level members, read once per event,
// so a field the record lacks costs a short scan instead of a walk of the
// whole record.
func (x *Engine) path(fv *fieldVal, src *fieldSource) bool {
	if !src.plain {
		return setResult(fv, gjson.Get(x.raw, src.path))
	}
	for _, m := range x.top() {
		if m.key != src.head {
			continue
		}
		if src.rest == "" {
			x.setRaw(fv, m.val)
			return true
		}
		if m.val[0] != '{' && m.val[0] != '[' {
			return false
		}
		return setResult(fv, gjson.Get(m.val, src.rest))
	}
	return false
}

// top returns the members of the record's top-level object, read once
// per event.
func (x *Engine) top() []dataMember {
	if !x.topDone {
		x.topDone = true
		x.topKV = appendMembers(x.topKV, x.raw)
	}
	return x.topKV
}

// appendMembers appends the members of the JSON object obj to kv, keys
// unescaped, at most maxDataMembers.
func appendMembers(kv []dataMember, obj string) []dataMember {
	it := newObjIter(obj)
	for len(kv) < maxDataMembers {
		k, v, ok := it.next()
		if !ok {
			break
		}
		if hasEscape(k) {
			k = string(source.AppendUnescaped(nil, k))
		}
		kv = append(kv, dataMember{key: k, val: v})
	}
	return kv
}

// maxDataMembers bounds the members kept per event.
const maxDataMembers = 1024

func (x *Engine) typed(f evField) string {
	ev := x.ev
	switch f {
	case efCommandLine:
		return ev.CommandLine
	case efImage:
		return ev.Image
	case efParentImage:
		return ev.ParentImage
	case efUser:
		return ev.User
	case efTargetUser:
		return ev.TargetUser
	case efHost:
		return ev.Host
	case efMessage:
		return ev.Message
	case efProgram:
		return ev.Program
	case efSrcIP:
		return ev.SrcIP
	case efEventID:
		if x.eventID == 0 {
			return ""
		}
		return x.itoa(x.eventID)
	case efChannel:
		return x.channel
	case efProvider:
		return ev.Provider
	case efRule:
		return ev.Rule
	case efPriority:
		return ev.Priority
	case efLogonType:
		if ev.LogonType == 0 {
			return ""
		}
		return x.itoa(ev.LogonType)
	}
	return ""
}

// itoa formats n into the arena.
func (x *Engine) itoa(n int) string {
	start := len(x.arena)
	x.arena = strconv.AppendInt(x.arena, int64(n), 10)
	return x.arenaString(start)
}

func (x *Engine) arenaString(start int) string {
	b := x.arena[start:]
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// low returns the folded form of a field value, made once per event.
func (x *Engine) low(v *fieldVal) string {
	if !v.lowDone {
		v.lowDone = true
		v.low = x.foldTemp(v.s)
	}
	return v.low
}

// foldTemp folds s into the arena (valid until the next event); s itself
// when folding changes nothing.
func (x *Engine) foldTemp(s string) string {
	if !needsFold(s) {
		return s
	}
	start := len(x.arena)
	x.arena = appendFold(x.arena, s)
	return x.arenaString(start)
}

// kvLookup finds key=value in an auditd or syslog text: the key at the
// start or after a space, the value up to the next space or, quoted, up to
// the closing quote.
func kvLookup(msg, key string) (string, bool) {
	for off := 0; off < len(msg); {
		i := strings.Index(msg[off:], key)
		if i < 0 {
			return "", false
		}
		i += off
		off = i + len(key)
		if (i > 0 && msg[i-1] != ' ') || off >= len(msg) || msg[off] != '=' {
			continue
		}
		v := msg[off+1:]
		if len(v) > 0 && v[0] == '"' {
			if j := strings.IndexByte(v[1:], '"'); j >= 0 {
				return v[1 : 1+j], true
			}
			return v[1:], true
		}
		if j := strings.IndexByte(v, ' '); j >= 0 {
			v = v[:j]
		}
		return v, true
	}
	return "", false
}

// detection turns a match into a detect.Detection for the reasoner.
func (r *Rule) detection(ev *event.Event) detect.Detection {
	var o matchObject
	o.set(ev)
	return r.detectionOf(ev, &o)
}

// matchObject is what a single-event match is about (the command line,
// else the image), prepared once per event for all the rules it matches.
type matchObject struct {
	gen    uint32 // the Engine's event generation it was set for
	verb   string
	quoted string // the object, quoted and clipped, for What
	key    string // "|host|object", case-folded, for Key
}

func (o *matchObject) set(ev *event.Event) {
	object, verb := ev.CommandLine, " running "
	if object == "" {
		object, verb = ev.Image, " by process "
	}
	o.verb, o.quoted = verb, ""
	if object != "" {
		o.quoted = string(appendQuoted(make([]byte, 0, min(len(object), 200)+16), object, 200))
	}
	k := make([]byte, 0, len(ev.Host)+len(object)+2)
	k = append(k, '|')
	k = appendLowerASCII(k, ev.Host)
	k = append(k, '|')
	k = appendLowerASCII(k, object)
	o.key = unsafe.String(unsafe.SliceData(k), len(k)) // k is not used again
}

func (r *Rule) detectionOf(ev *event.Event, o *matchObject) detect.Detection {
	what := r.what
	if o.quoted != "" {
		what = r.what + o.verb + o.quoted
	}
	return detect.Detection{
		Rule:       r.attr,
		Tactic:     r.tactic.Name,
		TacticID:   r.tactic.ID,
		Techniques: r.techs,
		Priority:   r.priority,
		Source:     "sigma",
		Event:      ev,
		Count:      1,
		Key:        r.attr.ID + o.key,
		What:       what,
	}
}

// appendLowerASCII appends s with ASCII letters lower-cased.
func appendLowerASCII(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < utf8.RuneSelf {
			c = asciiLower[c]
		}
		dst = append(dst, c)
	}
	return dst
}

// appendQuoted appends s as a quoted one-line string clipped to max
// bytes; odd text (control characters, invalid UTF-8) takes the careful
// path of quote.
func appendQuoted(dst []byte, s string, max int) []byte {
	plain := len(s) <= max && utf8.ValidString(s)
	for i := 0; plain && i < len(s); i++ {
		plain = s[i] >= 0x20 && s[i] != 0x7f
	}
	if !plain {
		return append(dst, quote(s, max)...)
	}
	ascii := true
	for i := 0; ascii && i < len(s); i++ {
		ascii = s[i] < utf8.RuneSelf
	}
	if !ascii {
		return strconv.AppendQuote(dst, s)
	}
	// Printable ASCII: only quotes and backslashes are escaped, exactly
	// as strconv.Quote does, without its per-rune work.
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '"' || c == '\\' {
			dst = append(dst, '\\', c)
		} else {
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}

// quote clips s to max bytes on a rune boundary, makes it valid UTF-8 on
// one line and quotes it.
func quote(s string, max int) string {
	// Only the first max bytes are shown: a long value is cut before its
	// whitespace is folded, leaving room for a fair amount of it.
	clipped := len(s) > 4*max
	if clipped {
		s = s[:4*max]
		for i := 0; i < utf8.UTFMax-1; i++ { // drop a rune the cut split
			if r, n := utf8.DecodeLastRuneInString(s); r != utf8.RuneError || n != 1 {
				break
			}
			s = s[:len(s)-1]
		}
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s, clipped = s[:cut], true
	}
	if clipped {
		s += "…"
	}
	return strconv.Quote(s)
}
