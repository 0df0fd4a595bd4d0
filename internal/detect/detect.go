// Package detect runs loupe's built-in detection rules over events and emits
// detections mapped to MITRE ATT&CK. Correlation state is bounded.
//
// Single-event rules are a declarative table (rules.go): each rule names
// the typed triggers it reacts to — Windows event ids, syslog programs, or
// literal anchor substrings of the lower-cased command line — and a match
// function that composes the specific observation. Brute-force detection
// (auth.go) correlates failed and successful logons in a sliding window of
// event time, keeping its state in fixed-capacity LRUs. Falco alerts are
// trusted and turned into detections directly (falco.go).
package detect

import (
	"strings"
	"time"
	"unsafe"

	"github.com/loupe-sec/loupe/internal/event"
	"github.com/loupe-sec/loupe/internal/finding"
)

// Detection is one rule hit, ready for reasoning.
type Detection struct {
	Rule       finding.Rule        // attribution: id, title, author, link, level
	Tactic     string              // ATT&CK tactic name ("Credential Access")
	TacticID   string              // TA0006
	Techniques []finding.Technique // resolved through the embedded ATT&CK table; shared, do not modify
	Priority   finding.Priority
	Source     string // "rule", "correlation" or "falco"

	Event   *event.Event       // the event that made the detection conclusive
	Related []finding.Evidence // earlier supporting events, oldest first (bounded)
	Count   int64              // events the detection covers (1 for single-event rules)

	// Actor names who acted when the detector knows better than the
	// event's user, e.g. the source address of a brute force or "4
	// sources"; "" lets the reasoner decide from the event.
	Actor string

	// Key groups identical conclusions (same rule, host and observation).
	Key string
	// What is the specific observation composed from the event, a clause
	// such as `installed service "PSEXESVC" running C:\Windows\PSEXESVC.exe`.
	What string
}

// Options tune detection.
type Options struct {
	// MaxTracked bounds correlation state (keys per correlation). 0 = 100000.
	MaxTracked int
	// FailThreshold is the number of failed logons within FailWindow that
	// makes a brute force. 0 = 10.
	FailThreshold int
	// FailWindow is the sliding window of event time for brute force. 0 = 5m.
	FailWindow time.Duration
}

func (o Options) withDefaults() Options {
	if o.MaxTracked <= 0 {
		o.MaxTracked = 100000
	}
	if o.FailThreshold <= 0 {
		o.FailThreshold = 10
	}
	if o.FailWindow <= 0 {
		o.FailWindow = 5 * time.Minute
	}
	return o
}

// Engine holds compiled rules and bounded correlation state. Not safe for
// concurrent use; use one Engine per stream.
type Engine struct {
	opt       Options
	byEventID map[int][]*rule
	byProgram map[string][]*rule
	commands  []*rule // rules with anchors, in table order (first match wins)
	anchors   anchorTable

	lower []byte // reused lower-case copy of the command text
	in    input
	auth  *authTracker
	burst *burstTracker
}

// New returns an engine with the built-in rules.
func New(opt Options) *Engine {
	opt = opt.withDefaults()
	e := &Engine{
		opt:       opt,
		byEventID: map[int][]*rule{},
		byProgram: map[string][]*rule{},
		auth:      newAuthTracker(opt),
		burst:     newBurstTracker(opt.MaxTracked),
	}
	for _, r := range rules {
		for _, id := range r.eventIDs {
			e.byEventID[id] = append(e.byEventID[id], r)
		}
		for _, p := range r.programs {
			e.byProgram[p] = append(e.byProgram[p], r)
		}
		if len(r.anchors) > 0 {
			e.commands = append(e.commands, r)
			for _, a := range r.anchors {
				e.anchors.add(a, r.bit)
			}
		}
	}
	for _, a := range reconAnchors {
		e.anchors.add(a, reconBit)
	}
	return e
}

// reconBit marks, in the anchor scan, command lines that may be discovery
// commands for the recon-burst correlation; rule bits stay below it.
const reconBit = 1 << 63

// reconAnchors is a literal of every reconCommands test (lower case), so
// the burst tracker only sees command lines that can match.
var reconAnchors = []string{
	"whoami", "net", "nltest", "ipconfig", "systeminfo", "tasklist", "quser", "qwinsta", "query",
	"dsquery", "adfind", "sharphound", "bloodhound", "get-ad", "get-net", "get-domain",
	"invoke-sharefinder", "find-localadmin", "netstat", "arp", "route", "setspn", "klist", "cmdkey",
	"wmic", "netsh", "nbtstat", "hostname",
}

// Observe tests ev against the rules and calls emit for each detection.
func (e *Engine) Observe(ev *event.Event, emit func(Detection)) {
	if ev == nil {
		return
	}
	if isFalco(ev) {
		emit(falcoDetection(ev))
		return
	}
	in := &e.in
	in.ev = ev
	in.cmd, in.lc = "", ""
	var fired uint64 // rule bits already emitted for this event

	if ev.EventID != 0 {
		for _, r := range e.byEventID[ev.EventID] {
			fired |= e.try(r, emit, fired)
		}
	}
	if ev.Program != "" {
		for _, r := range e.programRules(ev.Program) {
			fired |= e.try(r, emit, fired)
		}
	}
	if cmd := commandText(ev); cmd != "" {
		in.cmd = cmd
		e.lower = appendLower(e.lower[:0], cmd)
		in.lc = unsafe.String(unsafe.SliceData(e.lower), len(e.lower))
		present := e.anchors.scan(in.lc)
		for _, r := range e.commands {
			if present&r.bit == 0 {
				continue
			}
			if bit := e.try(r, emit, fired); bit != 0 {
				break
			}
		}
		if present&reconBit != 0 {
			e.burst.observeCommand(ev, in.lc, emit)
		}
		in.cmd, in.lc = "", ""
	}
	if ev.EventID == 4769 {
		e.burst.observeTicket(ev, emit)
	}
	e.auth.observe(ev, emit)
	in.ev = nil
}

// anchorTable finds in one pass over a lower-case command line which
// command rules have one of their anchors in it. Anchors are listed under
// their first byte.
type anchorTable [256][]anchor

type anchor struct {
	lit   string
	rules uint64 // bits of the rules that use this anchor
}

func (t *anchorTable) add(lit string, bit uint64) {
	if len(lit) < 2 {
		panic("detect: anchor " + lit + " is shorter than two bytes")
	}
	list := t[lit[0]]
	for i := range list {
		if list[i].lit == lit {
			list[i].rules |= bit
			return
		}
	}
	t[lit[0]] = append(list, anchor{lit, bit})
}

// scan returns the union of the rule bits whose anchors occur in lc.
func (t *anchorTable) scan(lc string) uint64 {
	var present uint64
	for i := 0; i+1 < len(lc); i++ {
		list := t[lc[i]]
		if len(list) == 0 {
			continue
		}
		rest := lc[i:]
		for _, a := range list {
			// Anchors are at least two bytes: test the second before the rest.
			if rest[1] == a.lit[1] && present&a.rules != a.rules && len(rest) >= len(a.lit) && rest[:len(a.lit)] == a.lit {
				present |= a.rules
			}
		}
	}
	return present
}

// try runs one rule unless it already fired for this event and returns its
// bit when it emitted.
func (e *Engine) try(r *rule, emit func(Detection), fired uint64) uint64 {
	if fired&r.bit != 0 {
		return 0
	}
	h, ok := r.match(&e.in)
	if !ok {
		return 0
	}
	emit(r.detection(e.in.ev, h))
	return r.bit
}

// Flush emits what correlations still hold at end of input. Brute-force
// conclusions are emitted as soon as a threshold is crossed, so nothing is
// pending; Flush only releases the correlation state.
func (e *Engine) Flush(emit func(Detection)) {
	e.auth.reset()
	e.burst.reset()
}

// commandText is the command line an event shows: the process command line,
// or the command sudo logged.
func commandText(ev *event.Event) string {
	if ev.CommandLine != "" {
		return ev.CommandLine
	}
	if ev.Program == "sudo" {
		if i := strings.Index(ev.Message, "COMMAND="); i >= 0 {
			return strings.TrimSpace(ev.Message[i+len("COMMAND="):])
		}
	}
	return ""
}

func isFalco(ev *event.Event) bool {
	return ev.Format == event.FormatFalco || (ev.Rule != "" && ev.Priority != "" && ev.Format != event.FormatEVTX)
}

// programRules finds the rules of a syslog program, ignoring case,
// without allocating.
func (e *Engine) programRules(p string) []*rule {
	if rs, ok := e.byProgram[p]; ok {
		return rs
	}
	var b [32]byte
	if len(p) > len(b) {
		return nil
	}
	return e.byProgram[string(appendLower(b[:0], p))]
}

// appendLower appends s with ASCII letters lower-cased, so byte offsets in
// the result match s.
func appendLower(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// Evidence is the record of ev a detector keeps among a detection's
// related events (the acting or target user, a summary clipped to 300
// bytes).
func Evidence(ev *event.Event) finding.Evidence {
	user := ev.User
	if user == "" {
		user = ev.TargetUser
	}
	return finding.Evidence{
		RecordID: ev.ID,
		Index:    ev.Index,
		Line:     ev.Line,
		Time:     ev.Time,
		Host:     ev.Host,
		User:     user,
		Summary:  clip(ev.Summary(), 300),
	}
}
