package detect

import (
	"container/list"
	"strconv"
	"strings"
	"time"

	"github.com/loupe-sec/loupe/internal/event"
	"github.com/loupe-sec/loupe/internal/finding"
)

const (
	maxRelated  = 5  // failed logons kept as evidence per burst
	maxDistinct = 16 // distinct users (per source) or sources (per user) remembered
	sprayUsers  = 5  // distinct users from one source that make a spray
)

// Correlation rules of the brute-force tracker.
var (
	ruleBruteForce = &rule{
		id: "loupe-brute-force", title: "Brute-force logon attempts",
		level: finding.Medium, tactic: "credential-access", techniques: []string{"T1110.001"},
	}
	rulePasswordSpray = &rule{
		id: "loupe-password-spray", title: "Password spraying",
		level: finding.High, tactic: "credential-access", techniques: []string{"T1110.003"},
	}
	ruleBruteForceSuccess = &rule{
		id: "loupe-brute-force-success", title: "Successful logon after brute force",
		level: finding.Critical, tactic: "initial-access", techniques: []string{"T1078", "T1110"},
	}
)

func init() {
	for _, r := range []*rule{ruleBruteForce, rulePasswordSpray, ruleBruteForceSuccess} {
		r.resolve()
	}
}

// authKind classifies logon events.
type authKind uint8

const (
	authNone authKind = iota
	authFail
	authSuccess
)

// authEvent is a logon attempt read from typed fields (and, for sshd
// syslog lines, from the message text).
type authEvent struct {
	kind       authKind
	user       string
	src        string // source IP, or workstation name when no IP is logged
	repeats    int64  // >1 for "message repeated N times" lines
	invalid    bool   // sshd "Invalid user" announcement
	forInvalid bool   // sshd "Failed ... for invalid user"
}

// failState is the sliding-window state of one key (host+source or
// host+user).
type failState struct {
	key         string
	ticks       []int64 // ring of the last threshold failure times
	next        int
	total       int64
	first       int64
	last        int64
	users       []string // distinct users (per-source state)
	srcs        []string // distinct sources (per-user state)
	evidence    []finding.Evidence
	crossed     bool // threshold reached in this burst
	reported    bool // success after the burst already reported
	lastInvalid string
	elem        *list.Element
}

// lru is a fixed-capacity least-recently-used set of fail states.
type lru struct {
	cap   int
	order *list.List // front = most recent; values are *failState
	index map[string]*failState
}

func newLRU(capacity int) *lru {
	return &lru{cap: capacity, order: list.New(), index: make(map[string]*failState)}
}

// get returns the state for key (key bytes are only copied on insert).
func (l *lru) get(key []byte) (*failState, bool) {
	st, ok := l.index[string(key)]
	if ok {
		l.order.MoveToFront(st.elem)
	}
	return st, ok
}

func (l *lru) add(key []byte) *failState {
	for l.order.Len() >= l.cap {
		old := l.order.Remove(l.order.Back()).(*failState)
		delete(l.index, old.key)
	}
	st := &failState{key: string(key)}
	st.elem = l.order.PushFront(st)
	l.index[st.key] = st
	return st
}

// expire drops least-recently-used states idle for longer than window.
func (l *lru) expire(now, window int64) {
	for l.order.Len() > 0 {
		st := l.order.Back().Value.(*failState)
		if now-st.last <= window {
			return
		}
		l.order.Remove(st.elem)
		delete(l.index, st.key)
	}
}

func (l *lru) len() int { return l.order.Len() }

// authTracker correlates failed and successful logons per (host, source)
// and per (host, user). Time is event time; events without a timestamp
// take the last one seen, so a stream without any times is one instant.
type authTracker struct {
	threshold int
	window    int64
	bySrc     *lru
	byUser    *lru
	clock     int64 // newest event time seen (ns)
	now       int64 // time of the current event
	key       []byte
}

func newAuthTracker(opt Options) *authTracker {
	return &authTracker{
		threshold: opt.FailThreshold,
		window:    int64(opt.FailWindow),
		bySrc:     newLRU(opt.MaxTracked),
		byUser:    newLRU(opt.MaxTracked),
	}
}

func (a *authTracker) reset() {
	a.bySrc = newLRU(a.bySrc.cap)
	a.byUser = newLRU(a.byUser.cap)
}

func (a *authTracker) observe(ev *event.Event, emit func(Detection)) {
	ae := classifyAuth(ev, a.bySrc.len()+a.byUser.len() > 0)
	if ae.kind == authNone {
		return
	}
	a.now = a.clock
	if !ev.Time.IsZero() {
		a.now = ev.Time.UnixNano()
		if a.now > a.clock {
			a.clock = a.now
		}
	}
	host := strings.ToLower(ev.Host)
	if ae.kind == authSuccess {
		a.success(ev, host, ae, emit)
		return
	}
	a.bySrc.expire(a.clock, a.window)
	a.byUser.expire(a.clock, a.window)

	var srcSt, userSt *failState
	if ae.src != "" {
		srcSt = a.state(a.bySrc, host, ae.src)
		// sshd announces an unknown user, then logs "Failed password for
		// invalid user" for the same attempt: count the pair once.
		if ae.invalid {
			srcSt.lastInvalid = ae.user
		} else if ae.forInvalid && srcSt.lastInvalid == ae.user {
			srcSt.lastInvalid = ""
			return
		}
	}
	if ae.user != "" {
		userSt = a.state(a.byUser, host, "u:"+strings.ToLower(ae.user))
	}
	if srcSt != nil && a.fail(srcSt, ev, ae, emit) && ae.user != "" {
		// The source state reported this burst; the per-user state only
		// reports what no single source explains.
		if userSt != nil {
			a.record(userSt, ev, ae)
		}
		return
	}
	if userSt != nil {
		a.fail(userSt, ev, ae, emit)
	}
}

// state finds or creates the state for host+part.
func (a *authTracker) state(l *lru, host, part string) *failState {
	a.key = append(append(append(a.key[:0], host...), 0), part...)
	if st, ok := l.get(a.key); ok {
		return st
	}
	st := l.add(a.key)
	st.ticks = make([]int64, 0, a.threshold)
	return st
}

// record adds one failure to st, restarting the burst when the previous
// failure is older than the window.
func (a *authTracker) record(st *failState, ev *event.Event, ae authEvent) {
	t := a.now
	if st.total > 0 && t-st.last > a.window {
		st.ticks, st.next, st.total = st.ticks[:0], 0, 0
		st.users, st.srcs, st.evidence = st.users[:0], st.srcs[:0], st.evidence[:0]
		st.crossed, st.reported = false, false
	}
	if st.total == 0 {
		st.first, st.last = t, t
	}
	st.first = min(st.first, t)
	st.last = max(st.last, t)
	for range ae.repeats {
		if len(st.ticks) < a.threshold {
			st.ticks = append(st.ticks, t)
		} else {
			st.ticks[st.next] = t
			st.next = (st.next + 1) % a.threshold
		}
	}
	st.total += ae.repeats
	if ae.user != "" {
		st.users = addDistinct(st.users, ae.user)
	}
	if ae.src != "" {
		st.srcs = addDistinct(st.srcs, ae.src)
	}
	if len(st.evidence) < maxRelated {
		st.evidence = append(st.evidence, Evidence(ev))
	}
}

// fail records a failure and emits when the burst crosses the threshold.
// It reports whether this state has crossed (now or before).
func (a *authTracker) fail(st *failState, ev *event.Event, ae authEvent, emit func(Detection)) bool {
	a.record(st, ev, ae)
	if st.crossed {
		return true
	}
	if len(st.ticks) < a.threshold {
		return false
	}
	lo, hi := st.ticks[0], st.ticks[0]
	for _, t := range st.ticks {
		lo, hi = min(lo, t), max(hi, t)
	}
	if hi-lo > a.window {
		return false
	}
	st.crossed = true
	perUser := strings.HasPrefix(st.key[strings.IndexByte(st.key, 0)+1:], "u:")
	if perUser && len(st.srcs) == 1 && ae.src != "" {
		return true // one source explains it; the source state reports
	}
	emit(a.bruteForce(st, ev, perUser))
	return true
}

func (a *authTracker) bruteForce(st *failState, ev *event.Event, perUser bool) Detection {
	r := ruleBruteForce
	window := humanDuration(time.Duration(a.window))
	var what, object, actor string
	times := strconv.FormatInt(st.total, 10) + " times"
	switch {
	case perUser:
		user := st.key[strings.IndexByte(st.key, 0)+3:]
		what = "failed to log on as " + quoted(user, 80) + " " + times
		if len(st.srcs) > 1 {
			actor = countOf(len(st.srcs), "source") + " (" + list3(st.srcs) + ")"
		}
		object = "user:" + user
	default:
		actor = st.key[strings.IndexByte(st.key, 0)+1:]
		if len(st.users) >= sprayUsers {
			r = rulePasswordSpray
			what = "failed to log on " + times + " across " + countOf(len(st.users), "account") + " (" + list3(st.users) + ")"
		} else {
			what = "failed to log on " + times
			if len(st.users) > 0 {
				what = "failed to log on as " + list3(st.users) + " " + times
			}
		}
		object = "src:" + actor
	}
	d := r.detection(ev, hit{what: what + " within " + window, object: object})
	d.Actor = validText(actor)
	d.Source = "correlation"
	d.Count = st.total
	d.Related = append([]finding.Evidence(nil), st.evidence...)
	return d
}

// success reports a successful logon that follows a crossed burst from the
// same source (critical) or for the same user (high) within the window.
func (a *authTracker) success(ev *event.Event, host string, ae authEvent, emit func(Detection)) {
	var srcSt, userSt *failState
	if ae.src != "" {
		a.key = append(append(append(a.key[:0], host...), 0), ae.src...)
		srcSt, _ = a.bySrc.get(a.key)
	}
	if ae.user != "" {
		a.key = append(append(append(a.key[:0], host...), 0, 'u', ':'), ae.user...)
		lowerASCII(a.key[len(host)+3:])
		userSt, _ = a.byUser.get(a.key)
	}
	follows := func(st *failState) bool {
		return st != nil && st.crossed && !st.reported && a.now >= st.first && a.now-st.last <= a.window
	}
	var st *failState
	raise := false
	switch {
	case follows(srcSt):
		st, raise = srcSt, true
	case follows(userSt):
		st = userSt
	default:
		return
	}
	st.reported = true
	if userSt != nil {
		userSt.reported = true
	}
	user := ae.user
	if user == "" {
		user = "an account"
	} else {
		user = quoted(user, 80)
	}
	what := "logged on as " + user + " after " + strconv.FormatInt(st.total, 10) + " failed attempts"
	d := ruleBruteForceSuccess.detection(ev, hit{what: what, object: strings.ToLower(ae.user) + "|" + ae.src, raise: raise})
	d.Source = "correlation"
	d.Count = st.total + 1
	d.Related = append([]finding.Evidence(nil), st.evidence...)
	emit(d)
}

func lowerASCII(b []byte) {
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
}

func addDistinct(set []string, v string) []string {
	if len(set) >= maxDistinct {
		return set
	}
	for _, s := range set {
		if s == v {
			return set
		}
	}
	return append(set, v)
}

func countOf(n int, noun string) string {
	s := strconv.Itoa(n)
	if n >= maxDistinct {
		s += "+"
	}
	return s + " " + noun + "s"
}

// list3 lists up to three values, quoted.
func list3(vs []string) string {
	var b strings.Builder
	for i, v := range vs {
		if i == 3 {
			b.WriteString(", …")
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(quoted(v, 60))
	}
	return b.String()
}

// classifyAuth reads a logon attempt from an event. needSuccess says
// whether successful logons matter (some state is held); when not, they
// are not looked at, which keeps ordinary logons free of work.
func classifyAuth(ev *event.Event, needSuccess bool) authEvent {
	switch ev.EventID {
	case 4625, 4771, 4776, 4624:
		if ev.Program != "" || !fromSecurity(ev) {
			break
		}
		if ev.EventID == 4624 && !needSuccess {
			return authEvent{}
		}
		return windowsLogon(ev)
	}
	if ev.Program == "" || len(ev.Message) < 12 {
		return authEvent{}
	}
	if strings.HasPrefix(ev.Program, "sshd") {
		return sshdLogon(ev, needSuccess)
	}
	// pam failures of other services (su, sudo, login, vsftpd ...).
	if strings.Contains(ev.Message, "authentication failure;") && strings.HasPrefix(ev.Message, "pam_") {
		ae := authEvent{kind: authFail, repeats: 1}
		ae.user = pamField(ev.Message, " user=")
		ae.src = pamField(ev.Message, " rhost=")
		if ae.user == "" {
			ae.user = ev.TargetUser
		}
		return ae
	}
	return authEvent{}
}

func windowsLogon(ev *event.Event) authEvent {
	ae := authEvent{repeats: 1, user: ev.TargetUser, src: ev.SrcIP}
	if ae.user == "" {
		ae.user = data(ev, "TargetUserName")
	}
	switch ev.EventID {
	case 4625, 4771:
		ae.kind = authFail
		if ae.src == "" {
			ae.src = data(ev, "IpAddress")
		}
	case 4776:
		if st := data(ev, "Status"); st == "" || strings.EqualFold(st, "0x0") {
			return authEvent{}
		}
		ae.kind = authFail
		if ae.src == "" {
			ae.src = data(ev, "Workstation")
		}
	case 4624:
		lt := ev.LogonType
		if lt == 0 {
			lt, _ = strconv.Atoi(data(ev, "LogonType"))
		}
		if lt != 3 && lt != 10 {
			return authEvent{}
		}
		ae.kind = authSuccess
		if ae.src == "" {
			ae.src = data(ev, "IpAddress")
		}
	}
	ae.src = cleanSource(ae.src)
	if ae.user == "-" {
		ae.user = ""
	}
	return ae
}

func cleanSource(s string) string {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "::ffff:")
	if s == "-" {
		return ""
	}
	return s
}

// sshdLogon reads OpenSSH messages: "Failed password for [invalid user] U
// from IP port N ssh2", "Invalid user U from IP port N", "Accepted
// publickey for U from IP port N ssh2", optionally wrapped in "message
// repeated N times: [ ... ]".
func sshdLogon(ev *event.Event, needSuccess bool) authEvent {
	msg := ev.Message
	ae := authEvent{repeats: 1}
	if strings.HasPrefix(msg, "message repeated ") {
		rest := msg[len("message repeated "):]
		n, rest, ok := strings.Cut(rest, " times: [")
		if !ok {
			return authEvent{}
		}
		k, err := strconv.Atoi(n)
		if err != nil || k < 1 {
			return authEvent{}
		}
		ae.repeats = int64(min(k, 1000))
		msg = strings.TrimSuffix(strings.TrimSpace(rest), "]")
	}
	var rest string
	switch {
	case strings.HasPrefix(msg, "Failed "):
		if strings.HasPrefix(msg, "Failed publickey") {
			return authEvent{} // offering several keys is normal
		}
		_, r, ok := strings.Cut(msg, " for ")
		if !ok {
			return authEvent{}
		}
		ae.kind, rest = authFail, r
		if strings.HasPrefix(rest, "invalid user ") {
			rest = rest[len("invalid user "):]
			ae.forInvalid = true
		}
	case strings.HasPrefix(msg, "Invalid user "):
		ae.kind, ae.invalid, rest = authFail, true, msg[len("Invalid user "):]
	case strings.HasPrefix(msg, "Accepted "):
		if !needSuccess {
			return authEvent{}
		}
		_, r, ok := strings.Cut(msg, " for ")
		if !ok {
			return authEvent{}
		}
		ae.kind, rest = authSuccess, r
	default:
		return authEvent{}
	}
	i := strings.LastIndex(rest, " from ")
	if i < 0 {
		return authEvent{}
	}
	ae.user = rest[:i]
	ae.src, _, _ = strings.Cut(rest[i+len(" from "):], " ")
	if ev.SrcIP != "" {
		ae.src = ev.SrcIP
	}
	if ae.user == "" {
		ae.user = ev.TargetUser
	}
	return ae
}

// pamField returns the value of a pam "key=value" field (empty when absent).
func pamField(msg, key string) string {
	i := strings.Index(msg, key)
	if i < 0 {
		return ""
	}
	v, _, _ := strings.Cut(msg[i+len(key):], " ")
	return v
}

// humanDuration writes a window the way an analyst says it: "5 minutes",
// "90 seconds", "1 hour".
func humanDuration(d time.Duration) string {
	n, unit := int64(d.Round(time.Second)/time.Second), "second"
	switch {
	case d >= time.Hour && d%time.Hour == 0:
		n, unit = int64(d/time.Hour), "hour"
	case d >= time.Minute && d%time.Minute == 0:
		n, unit = int64(d/time.Minute), "minute"
	}
	if n != 1 {
		unit += "s"
	}
	return strconv.FormatInt(n, 10) + " " + unit
}
