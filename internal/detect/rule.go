package detect

import (
	"strings"
	"unicode/utf8"

	"github.com/loupe-sec/loupe/internal/attack"
	"github.com/loupe-sec/loupe/internal/event"
	"github.com/loupe-sec/loupe/internal/finding"
)

// rule is one built-in single-event detection. The engine calls match only
// when one of the rule's typed triggers holds: the event id is in eventIDs,
// the syslog program (lower-cased) is in programs, or one of the anchors
// occurs in the lower-cased command line. Among command-line triggered
// rules the first in table order that matches wins, so the more specific
// rules come first.
type rule struct {
	id, title  string
	level      finding.Priority
	tactic     string   // chosen tactic, any form attack.TacticByName takes
	techniques []string // ATT&CK ids, most specific first

	eventIDs []int
	programs []string // lower case
	anchors  []string // lower-case literals for the command-line prefilter

	match func(in *input) (hit, bool)

	// Resolved once at start.
	bit   uint64
	attr  finding.Rule
	ta    attack.Tactic
	techs []finding.Technique
}

// input is what a match function sees. cmd and lc are set only when the
// rule was triggered through the command line; lc is cmd with ASCII
// letters lower-cased (same byte offsets) and is valid only during match.
type input struct {
	ev  *event.Event
	cmd string
	lc  string
}

// hit is a rule's specific observation.
type hit struct {
	what   string // clause for Detection.What
	object string // distinguishing object for Detection.Key
	raise  bool   // one priority level above the rule's level
	actor  string // Detection.Actor, when the rule knows the actor better than the event's user
}

func init() {
	if len(rules) > 63 {
		panic("detect: more than 63 rules; widen the fired bit set (the top bit is reconBit)")
	}
	for i, r := range rules {
		r.bit = 1 << i
		r.resolve()
	}
}

// resolve looks up the rule's tactic and techniques in the ATT&CK table.
func (r *rule) resolve() {
	ta, ok := attack.TacticByName(r.tactic)
	if !ok {
		panic("detect: rule " + r.id + ": unknown tactic " + r.tactic)
	}
	r.ta = ta
	r.techs = resolveTechniques(r.id, r.techniques)
	r.attr = finding.Rule{
		ID:     r.id,
		Title:  r.title,
		Author: "loupe",
		Link:   attack.URL(r.techniques[0]),
		Level:  r.level.String(),
	}
}

func resolveTechniques(ruleID string, ids []string) []finding.Technique {
	out := make([]finding.Technique, 0, len(ids))
	for _, id := range ids {
		t, _, ok := attack.Lookup(id)
		if !ok {
			panic("detect: rule " + ruleID + ": unknown technique " + id)
		}
		out = append(out, t)
	}
	return out
}

func (r *rule) detection(ev *event.Event, h hit) Detection {
	p := r.level
	if h.raise && p < finding.Critical {
		p++
	}
	return Detection{
		Rule:       r.attr,
		Tactic:     r.ta.Name,
		TacticID:   r.ta.ID,
		Techniques: r.techs,
		Priority:   p,
		Source:     "rule",
		Event:      ev,
		Count:      1,
		Key:        r.id + "|" + strings.ToLower(ev.Host) + "|" + h.object,
		What:       validText(h.what),
		Actor:      validText(h.actor),
	}
}

// maxWhat bounds an observation clause, whatever the log fed into it.
const maxWhat = 600

// validText makes a clause safe to show: log bytes that are not UTF-8
// become U+FFFD and the length is bounded. Detections are rare, so the scan
// costs nothing on the hot path.
func validText(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return clip(s, maxWhat)
}

// --- small text helpers shared by the rules ---

// clip shortens s to at most n bytes on a rune boundary, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// oneLine replaces control characters and runs of white space by one space.
func oneLine(s string) string {
	var b strings.Builder
	space := false
	for _, r := range s {
		if r < ' ' || r == 0x7f || r == ' ' || r == utf8.RuneError {
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
	}
	return b.String()
}

// norm is a command or object normalised for grouping keys.
func norm(s string) string {
	return clip(strings.ToLower(oneLine(s)), 200)
}

// quoted formats s for a What clause: on one line, bounded, in quotes.
func quoted(s string, n int) string {
	return `"` + clip(oneLine(s), n) + `"`
}

// containsFold reports whether s contains the lower-case ASCII literal sub,
// ignoring case, without allocating.
func containsFold(s, sub string) bool {
	n := len(sub)
	for i := 0; i+n <= len(s); i++ {
		if equalFoldASCII(s[i:i+n], sub) {
			return true
		}
	}
	return false
}

func equalFoldASCII(s, lowerSub string) bool {
	for j := 0; j < len(lowerSub); j++ {
		c := s[j]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lowerSub[j] {
			return false
		}
	}
	return true
}

// hasProg reports whether lc runs the program name: name appears as a
// word preceded by start, a path separator, white space or a shell
// operator, and followed by end, white space, a quote or ".exe".
func hasProg(lc, name string) bool {
	return progIndex(lc, name) >= 0
}

func progIndex(lc, name string) int {
	from := 0
	for {
		i := strings.Index(lc[from:], name)
		if i < 0 {
			return -1
		}
		i += from
		end := i + len(name)
		before := i == 0 || strings.IndexByte(" \t\\/\"'`;|&(=", lc[i-1]) >= 0
		after := end == len(lc) || strings.IndexByte(" \t\"'`;|&)", lc[end]) >= 0 ||
			strings.HasPrefix(lc[end:], ".exe") || (lc[end] == '.' && name == "nc")
		if before && after {
			return i
		}
		from = i + 1
	}
}

// args splits a command line into arguments, honouring double and single
// quotes (which are removed).
func args(s string) []string {
	var out []string
	var b strings.Builder
	in := false
	var q byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case q != 0 && c == q:
			q = 0
		case q == 0 && (c == '"' || c == '\''):
			q, in = c, true
		case q == 0 && (c == ' ' || c == '\t' || c == '\n' || c == '\r'):
			if in {
				out = append(out, b.String())
				b.Reset()
				in = false
			}
		default:
			b.WriteByte(c)
			in = true
		}
	}
	if in {
		out = append(out, b.String())
	}
	return out
}

// argAfter returns the argument following the first one equal (ignoring
// case) to any of names.
func argAfter(as []string, names ...string) string {
	for i := 0; i+1 < len(as); i++ {
		for _, n := range names {
			if strings.EqualFold(as[i], n) {
				return as[i+1]
			}
		}
	}
	return ""
}

// firstURL returns the first http(s)/ftp URL in cmd (found through lc).
func firstURL(cmd, lc string) string {
	i := -1
	for _, p := range []string{"http://", "https://", "ftp://"} {
		if j := strings.Index(lc, p); j >= 0 && (i < 0 || j < i) {
			i = j
		}
	}
	if i < 0 {
		return ""
	}
	end := i
	for end < len(cmd) && strings.IndexByte(" \t\"'`;|&)(<>,", cmd[end]) < 0 {
		end++
	}
	return clip(cmd[i:end], 200)
}

// ipPort finds the first IPv4 literal in s and the port that follows it
// (after at most a few separators), for reverse-shell targets.
func ipPort(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' || (i > 0 && (s[i-1] >= '0' && s[i-1] <= '9' || s[i-1] == '.')) {
			continue
		}
		j, dots := i, 0
		for j < len(s) && (s[j] >= '0' && s[j] <= '9' || s[j] == '.') {
			if s[j] == '.' {
				dots++
			}
			j++
		}
		ip := strings.TrimRight(s[i:j], ".")
		if dots < 3 || strings.Count(ip, ".") != 3 {
			i = j
			continue
		}
		k := j
		for k < len(s) && k-j < 4 && strings.IndexByte(" :,'\"/", s[k]) >= 0 {
			k++
		}
		p := k
		for p < len(s) && p-k < 5 && s[p] >= '0' && s[p] <= '9' {
			p++
		}
		if p > k {
			return ip + ":" + s[k:p]
		}
		return ip
	}
	return ""
}

// basename is the last element of a Windows or Unix path.
func basename(p string) string {
	p = strings.Trim(p, `"' `)
	if i := strings.LastIndexAny(p, `\/`); i >= 0 {
		return p[i+1:]
	}
	return p
}
