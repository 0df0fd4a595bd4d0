package detect

import (
	"container/list"
	"strings"
	"time"

	"github.com/loupe-sec/loupe/internal/event"
	"github.com/loupe-sec/loupe/internal/finding"
)

// Burst correlations: one actor doing several distinct things of one kind
// on one host within a window of event time — reconnaissance commands, or
// RC4 service tickets for different services. State is a fixed-capacity
// LRU; each burst is reported once.

const (
	burstWindow   = 10 * time.Minute
	maxBurstKinds = 16
	reconBurst    = 3 // distinct recon commands that make a discovery burst
	roastBurst    = 2 // distinct services whose RC4 tickets make Kerberoasting
)

var (
	ruleReconBurst = &rule{
		id: "loupe-recon-burst", title: "Burst of discovery commands",
		level: finding.Medium, tactic: "discovery", techniques: []string{"T1087", "T1069", "T1082", "T1016"},
	}
	ruleKerberoast = &rule{
		id: "loupe-kerberoasting", title: "Kerberoasting: RC4 service tickets for several services",
		level: finding.High, tactic: "credential-access", techniques: []string{"T1558.003"},
	}
)

func init() {
	ruleReconBurst.resolve()
	ruleKerberoast.resolve()
}

type burstState struct {
	key      string
	first    int64
	last     int64
	events   int64
	kinds    []uint64
	names    []string
	evidence []finding.Evidence
	reported bool
	elem     *list.Element
}

type burstTracker struct {
	cap   int
	order *list.List
	index map[string]*burstState
	clock int64
	key   []byte
}

func newBurstTracker(capacity int) *burstTracker {
	return &burstTracker{cap: capacity, order: list.New(), index: map[string]*burstState{}}
}

func (b *burstTracker) reset() {
	b.order.Init()
	clear(b.index)
}

// observe records one event of kind for (r, host, actor) and emits the
// burst detection when the distinct kinds reach threshold.
func (b *burstTracker) observe(r *rule, ev *event.Event, actor string, kind uint64, name string, threshold int, emit func(Detection)) {
	now := b.clock
	if !ev.Time.IsZero() {
		now = ev.Time.UnixNano()
		if now > b.clock {
			b.clock = now
		}
	}
	b.key = append(b.key[:0], r.id...)
	b.key = append(b.key, '|')
	b.key = appendLower(b.key, ev.Host)
	b.key = append(b.key, '|')
	b.key = appendLower(b.key, actor)
	st, ok := b.index[string(b.key)]
	if ok {
		b.order.MoveToFront(st.elem)
		if now-st.first > int64(burstWindow) || now < st.first-int64(burstWindow) {
			st.first, st.events, st.kinds, st.names, st.evidence, st.reported = now, 0, st.kinds[:0], st.names[:0], nil, false
		}
	} else {
		for b.order.Len() >= b.cap {
			old := b.order.Remove(b.order.Back()).(*burstState)
			delete(b.index, old.key)
		}
		st = &burstState{key: string(b.key), first: now}
		st.elem = b.order.PushFront(st)
		b.index[st.key] = st
	}
	st.last = now
	st.events++
	for _, k := range st.kinds {
		if k == kind {
			return
		}
	}
	if len(st.kinds) >= maxBurstKinds {
		return
	}
	st.kinds = append(st.kinds, kind)
	st.names = append(st.names, name)
	if len(st.kinds) < threshold || st.reported {
		if len(st.evidence) < maxRelated {
			st.evidence = append(st.evidence, Evidence(ev))
		}
		return
	}
	st.reported = true
	d := r.detection(ev, hit{})
	d.Source = "correlation"
	d.Count = st.events
	d.Related = st.evidence
	d.Key = r.id + "|" + strings.ToLower(ev.Host) + "|" + strings.ToLower(actor)
	span := humanDuration(time.Duration(now - st.first))
	switch {
	case r == ruleKerberoast:
		d.What = "requested RC4-encrypted service tickets for " + countOf(len(st.names), "service") + " (" + list3(st.names) + ") within " + span
	case len(st.names) == 1:
		d.What = "ran the discovery tool " + st.names[0]
	default:
		d.What = "ran " + countOf(len(st.names), "distinct discovery command") + " within " + span + ": " + list3(st.names)
	}
	d.What = validText(d.What)
	emit(d)
}

// reconCommands are discovery commands: a name for the What clause and a
// test on the lower-cased command line. heavy ones are enough alone.
var reconCommands = []struct {
	name  string
	heavy bool
	test  func(lc string) bool
}{
	{"whoami", false, func(lc string) bool { return hasProg(lc, "whoami") }},
	{"net user", false, func(lc string) bool { return netVerb(lc, " user") }},
	{"net group", false, func(lc string) bool { return netVerb(lc, " group") }},
	{"net localgroup", false, func(lc string) bool { return netVerb(lc, " localgroup") }},
	{"net view", false, func(lc string) bool { return netVerb(lc, " view") }},
	{"net share", false, func(lc string) bool { return netVerb(lc, " share") }},
	{"net accounts", false, func(lc string) bool { return netVerb(lc, " accounts") }},
	{"net session", false, func(lc string) bool { return netVerb(lc, " session") }},
	{"nltest", false, func(lc string) bool { return hasProg(lc, "nltest") }},
	{"ipconfig", false, func(lc string) bool { return hasProg(lc, "ipconfig") }},
	{"systeminfo", false, func(lc string) bool { return hasProg(lc, "systeminfo") }},
	{"tasklist", false, func(lc string) bool { return hasProg(lc, "tasklist") }},
	{"query user", false, func(lc string) bool {
		return hasProg(lc, "quser") || hasProg(lc, "qwinsta") || hasProg(lc, "query") && strings.Contains(lc, " user")
	}},
	{"dsquery", false, func(lc string) bool { return hasProg(lc, "dsquery") }},
	{"AdFind", true, func(lc string) bool { return hasProg(lc, "adfind") }},
	{"BloodHound", true, func(lc string) bool { return strings.Contains(lc, "sharphound") || strings.Contains(lc, "bloodhound") }},
	{"Get-AD*", false, func(lc string) bool {
		return strings.Contains(lc, "get-aduser") || strings.Contains(lc, "get-adcomputer") || strings.Contains(lc, "get-adgroup") || strings.Contains(lc, "get-addomain")
	}},
	{"PowerView", true, func(lc string) bool {
		return strings.Contains(lc, "get-netuser") || strings.Contains(lc, "get-netdomain") || strings.Contains(lc, "invoke-sharefinder") || strings.Contains(lc, "get-domainuser") || strings.Contains(lc, "find-localadminaccess")
	}},
	{"netstat", false, func(lc string) bool { return hasProg(lc, "netstat") }},
	{"arp", false, func(lc string) bool { return hasProg(lc, "arp") && strings.Contains(lc, "-a") }},
	{"route print", false, func(lc string) bool { return hasProg(lc, "route") && strings.Contains(lc, "print") }},
	{"setspn", false, func(lc string) bool {
		return hasProg(lc, "setspn") && (strings.Contains(lc, "-q") || strings.Contains(lc, "-t"))
	}},
	{"klist", false, func(lc string) bool { return hasProg(lc, "klist") }},
	{"cmdkey /list", false, func(lc string) bool { return hasProg(lc, "cmdkey") && strings.Contains(lc, "/l") }},
	{"wmic inventory", false, func(lc string) bool {
		return hasProg(lc, "wmic") && containsAny(lc, []string{"useraccount", " group", "computersystem", " qfe", "nicconfig", "antivirusproduct", " share", " startup", "process list"})
	}},
	{"netsh show", false, func(lc string) bool { return hasProg(lc, "netsh") && strings.Contains(lc, " show ") }},
	{"nbtstat", false, func(lc string) bool { return hasProg(lc, "nbtstat") }},
	{"hostname", false, func(lc string) bool { return hasProg(lc, "hostname") }},
}

func netVerb(lc, verb string) bool {
	if !hasProg(lc, "net") && !hasProg(lc, "net1") {
		return false
	}
	i := strings.Index(lc, verb)
	if i < 0 || strings.Contains(lc, "/add") || strings.Contains(lc, "/del") {
		return false
	}
	end := i + len(verb)
	return end == len(lc) || lc[end] == ' ' || lc[end] == 's' && (end+1 == len(lc) || lc[end+1] == ' ')
}

// reconKind classifies a lower-cased command line as a discovery command.
func reconKind(lc string) (int, bool) {
	for i, c := range reconCommands {
		if c.test(lc) {
			return i, true
		}
	}
	return -1, false
}

func (b *burstTracker) observeCommand(ev *event.Event, lc string, emit func(Detection)) {
	i, ok := reconKind(lc)
	if !ok {
		return
	}
	threshold := reconBurst
	if reconCommands[i].heavy {
		threshold = 1
	}
	actor := ev.User
	if actor == "" {
		actor = ev.Image
	}
	b.observe(ruleReconBurst, ev, actor, uint64(i), reconCommands[i].name, threshold, emit)
}

// observeTicket counts 4769 service tickets issued with RC4 (0x17) for
// user services, the trace of Kerberoasting.
func (b *burstTracker) observeTicket(ev *event.Event, emit func(Detection)) {
	if !fromSecurity(ev) || !rawHas(ev, "0x17") {
		return
	}
	if !strings.EqualFold(data(ev, "TicketEncryptionType"), "0x17") {
		return
	}
	if s := data(ev, "Status"); s != "" && s != "0x0" {
		return
	}
	svc := data(ev, "ServiceName")
	if svc == "" || strings.HasSuffix(svc, "$") || strings.EqualFold(svc, "krbtgt") {
		return
	}
	h := uint64(14695981039346656037)
	for i := 0; i < len(svc); i++ {
		c := svc[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		h = (h ^ uint64(c)) * 1099511628211
	}
	actor := ev.TargetUser
	if i := strings.IndexByte(actor, '@'); i > 0 {
		actor = actor[:i]
	}
	b.observe(ruleKerberoast, ev, actor, h, svc, roastBurst, emit)
}
