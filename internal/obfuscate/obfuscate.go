// Package obfuscate replaces sensitive values in log text with stable tokens
// before that text is sent to a language model, and puts the real values back
// into the model's answer for the analyst.
//
// A Mapper is made for one request or analysis. Inside it every distinct value
// gets one token, numbered in order of first sight per kind: the first
// internal address becomes [INTERNAL-IP-1] wherever it appears, the next
// distinct one [INTERNAL-IP-2], and so on. Two Mappers share nothing, so the
// same address may carry different numbers in different requests.
//
// What is replaced:
//
//   - IPv4 and IPv6 addresses (full or compressed, bracketed, with a port,
//     inside URLs, IPv4-mapped IPv6), as [INTERNAL-IP-n] when the address
//     lies in Options.InternalNets and [EXTERNAL-IP-n] otherwise.
//     Unspecified (0.0.0.0, ::), broadcast and multicast addresses identify
//     nobody and are left as they are.
//   - User names, as [USER-n]: values of user keys (user=, USER=,
//     "TargetUserName": ...), "user alice", "for alice from" (sshd),
//     "sudo: alice :", home directories (/home/alice/, /Users/alice,
//     C:\Users\alice\, also JSON-escaped), DOMAIN\alice (upper-case
//     NetBIOS domain; the domain stays), URL user info, and
//     Options.KnownUsers.
//   - Host names, as [HOST-n]: fully qualified names whose last label is in
//     a list of top-level domains (names ending in a TLD that is also a
//     common file extension, such as .sh, .py or .zip, need at least three
//     labels), values of host keys (host=, hostname=, Computer,
//     container.name, k8s.pod.name), URL hosts, and Options.KnownHosts.
//     File names, versions and reverse-domain package paths are not hosts.
//   - Container ids (12 or 64 hex digits) in container contexts, as
//     [CONTAINER-n]: container_id=, container.id, docker://, containerd://,
//     cri-o://, cgroup paths (/docker/<id>, docker-<id>.scope, ...).
//   - E-mail addresses, as [EMAIL-n].
//   - Secrets, always as [REDACTED]: private key blocks, AWS, GitHub, Slack,
//     Google, Stripe and OpenAI-style keys, JWTs, bearer and other
//     Authorization credentials, URL passwords, values of password-, secret-
//     and token-like keys, high-entropy values after key/secret words,
//     mysql -p<password> and --password options (but PWD=/path, sudo's
//     working directory, is a path). Secrets are never numbered,
//     never stored and never restored.
//
// A value found once in a text by context is also replaced where it occurs
// elsewhere in that text as a whole word. Anything not listed above (process
// names, paths other than home directories, hashes, SIDs, domain names in
// DOMAIN\user) passes through unchanged. Detection is heuristic: a name
// without any of these contexts is not recognised.
//
// The mapping between tokens and values lives only in the Mapper, in memory;
// nothing in this package writes it anywhere or sends it out of the process.
// Table exists so that a caller can show it to the analyst.
//
// All scanning is hand-written, linear in the input and free of regular
// expressions. A Mapper is safe for concurrent use.
package obfuscate

import (
	"cmp"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Kind is the category of a replaced value.
type Kind string

// The kinds of replaced values.
const (
	KindInternalIP Kind = "internal-ip"
	KindExternalIP Kind = "external-ip"
	KindUser       Kind = "user"
	KindHost       Kind = "host"
	KindContainer  Kind = "container"
	KindEmail      Kind = "email"
	KindSecret     Kind = "secret"   // always [REDACTED], value not kept
	KindOverflow   Kind = "overflow" // [REDACTED] because the Mapper was full
)

// Redacted replaces secrets, and any value that arrives after the Mapper
// reached its token limit.
const Redacted = "[REDACTED]"

// NotKept is the Entry.Value shown for redacted values.
const NotKept = "(not kept)"

// DefaultMaxTokens bounds the distinct values one Mapper numbers.
const DefaultMaxTokens = 10000

var tokenPrefix = map[Kind]string{
	KindInternalIP: "[INTERNAL-IP-",
	KindExternalIP: "[EXTERNAL-IP-",
	KindUser:       "[USER-",
	KindHost:       "[HOST-",
	KindContainer:  "[CONTAINER-",
	KindEmail:      "[EMAIL-",
}

// maxTokenLen is longer than any token this package writes.
const maxTokenLen = 32

// Options configure a Mapper.
type Options struct {
	// PreserveStructure controls what surrounds a token. When true, each
	// value is replaced in place and every other byte of the input is kept,
	// so quotes, ports (10.0.0.5:443 becomes [INTERNAL-IP-1]:443), paths
	// and key=value shapes stay exactly as they were, and Restore gives back
	// the original text when it held no secret. When false, the text is
	// also made shorter: an address's port goes with it
	// (10.0.0.5:443 and [fe80::1]:443 become a single token) and every run
	// of two or more whitespace bytes becomes one space, or one newline if
	// the run held a newline.
	PreserveStructure bool
	// InternalNets decides [INTERNAL-IP-n] versus [EXTERNAL-IP-n]. Empty
	// means DefaultInternalNets.
	InternalNets []netip.Prefix
	// KnownUsers and KnownHosts are replaced wherever they occur as whole
	// words, in addition to what is found by context.
	KnownUsers []string
	KnownHosts []string
	// MaxTokens bounds the distinct values numbered; later new values become
	// [REDACTED]. Zero means DefaultMaxTokens.
	MaxTokens int
}

// DefaultInternalNets are RFC 1918, loopback, link-local, carrier-grade NAT
// and IPv6 unique-local and link-local ranges.
func DefaultInternalNets() []netip.Prefix {
	return []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("172.16.0.0/12"),
		netip.MustParsePrefix("192.168.0.0/16"),
		netip.MustParsePrefix("127.0.0.0/8"),
		netip.MustParsePrefix("169.254.0.0/16"),
		netip.MustParsePrefix("100.64.0.0/10"),
		netip.MustParsePrefix("::1/128"),
		netip.MustParsePrefix("fc00::/7"),
		netip.MustParsePrefix("fe80::/10"),
	}
}

// Entry is one row of the token table.
type Entry struct {
	Token string
	Kind  Kind
	Value string
}

type valueKey struct {
	kind  Kind
	value string
}

type numbered struct {
	kind  Kind
	n     int
	value string
}

// Mapper obfuscates the texts of one request with consistent tokens.
type Mapper struct {
	preserve bool
	nets     []netip.Prefix
	known    []known
	max      int

	mu       sync.Mutex
	byValue  map[valueKey]string
	byToken  map[string]numbered
	next     map[Kind]int
	secrets  int
	overflow int
}

type known struct {
	kind  Kind
	value string
}

// New returns an empty Mapper.
func New(opt Options) *Mapper {
	m := &Mapper{
		preserve: opt.PreserveStructure,
		nets:     slices.Clone(opt.InternalNets),
		max:      opt.MaxTokens,
		byValue:  make(map[valueKey]string, 64),
		byToken:  make(map[string]numbered, 64),
		next:     make(map[Kind]int, 8),
	}
	if len(m.nets) == 0 {
		m.nets = DefaultInternalNets()
	}
	if m.max <= 0 {
		m.max = DefaultMaxTokens
	}
	for _, u := range opt.KnownUsers {
		if u = strings.TrimSpace(u); u != "" {
			m.known = append(m.known, known{KindUser, u})
		}
	}
	for _, h := range opt.KnownHosts {
		if h = strings.TrimSpace(h); h != "" {
			m.known = append(m.known, known{KindHost, h})
		}
	}
	return m
}

// Text returns s with every sensitive value it recognises replaced by a token.
func (m *Mapper) Text(s string) string {
	if s == "" {
		return s
	}
	sc := scanner{m: m, s: s}
	sc.detect()
	return m.render(&sc)
}

// Fields returns a copy of fields with every value obfuscated. The key names
// first decide how a whole value is read (a "user.name" value is a user, a
// "hostname" value a host, a "password" value a secret); the value is then
// scanned like Text for anything else. Keys are processed in sorted order so
// numbering does not depend on map iteration.
func (m *Mapper) Fields(fields map[string]string) map[string]string {
	if fields == nil {
		return nil
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make(map[string]string, len(fields))
	for _, k := range keys {
		v := fields[k]
		if v == "" {
			out[k] = v
			continue
		}
		sc := scanner{m: m, s: v}
		sc.wholeValue(classifyPath(k))
		sc.detect()
		out[k] = m.render(&sc)
	}
	return out
}

// render numbers the spans found by sc and writes the obfuscated text.
func (m *Mapper) render(sc *scanner) string {
	s := sc.s
	if len(sc.spans) == 0 {
		if m.preserve {
			return s
		}
		return collapseSpace(s)
	}
	tokens := make([]string, len(sc.spans))
	m.mu.Lock()
	for i, sp := range sc.spans {
		tokens[i] = m.tokenLocked(sp.kind, sp.value)
	}
	m.mu.Unlock()

	var b strings.Builder
	b.Grow(len(s) + 8*len(sc.spans))
	last := 0
	for i, sp := range sc.spans {
		m.writeText(&b, s[last:sp.start])
		b.WriteString(tokens[i])
		last = sp.end
	}
	m.writeText(&b, s[last:])
	return b.String()
}

func (m *Mapper) writeText(b *strings.Builder, t string) {
	if m.preserve {
		b.WriteString(t)
		return
	}
	writeCollapsed(b, t)
}

// tokenLocked returns the token for one value. m.mu must be held.
func (m *Mapper) tokenLocked(kind Kind, value string) string {
	if kind == KindSecret {
		m.secrets++
		return Redacted
	}
	if t, ok := m.byValue[valueKey{kind, value}]; ok {
		return t
	}
	if len(m.byToken) >= m.max {
		m.overflow++
		return Redacted
	}
	value = strings.Clone(value) // do not pin the whole input
	n := m.next[kind] + 1
	m.next[kind] = n
	t := tokenPrefix[kind] + strconv.Itoa(n) + "]"
	m.byValue[valueKey{kind, value}] = t
	m.byToken[t] = numbered{kind, n, value}
	return t
}

// Restore replaces the tokens this Mapper issued with their real values.
// [REDACTED] and anything that only looks like a token stay as they are.
// An input that already held text shaped like an issued token (say a
// literal "[USER-1]") is restored too, so the round trip is exact only for
// texts without such strings.
func (m *Mapper) Restore(s string) string {
	if strings.IndexByte(s, '[') < 0 {
		return s
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var b strings.Builder
	last := 0
	for i := 0; i < len(s); {
		j := strings.IndexByte(s[i:], '[')
		if j < 0 {
			break
		}
		j += i
		k := strings.IndexByte(s[j:min(len(s), j+maxTokenLen)], ']')
		if k < 0 {
			i = j + 1
			continue
		}
		e, ok := m.byToken[s[j:j+k+1]]
		if !ok {
			i = j + 1
			continue
		}
		if last == 0 {
			b.Grow(len(s))
		}
		b.WriteString(s[last:j])
		b.WriteString(e.value)
		last = j + k + 1
		i = last
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// Table lists every token issued so far with its kind and real value, sorted
// by token (numbers compared as numbers). Secrets appear once, as
// [REDACTED] of kind secret with value "(not kept)"; values dropped because
// the Mapper was full likewise appear once with kind overflow.
func (m *Mapper) Table() []Entry {
	m.mu.Lock()
	rows := make([]numbered, 0, len(m.byToken))
	for _, e := range m.byToken {
		rows = append(rows, e)
	}
	secrets, overflow := m.secrets, m.overflow
	m.mu.Unlock()

	slices.SortFunc(rows, func(a, b numbered) int {
		return cmp.Or(cmp.Compare(tokenPrefix[a.kind], tokenPrefix[b.kind]), cmp.Compare(a.n, b.n))
	})
	out := make([]Entry, 0, len(rows)+2)
	for _, r := range rows {
		out = append(out, Entry{Token: tokenPrefix[r.kind] + strconv.Itoa(r.n) + "]", Kind: r.kind, Value: r.value})
	}
	if overflow > 0 {
		out = append(out, Entry{Token: Redacted, Kind: KindOverflow, Value: NotKept})
	}
	if secrets > 0 {
		out = append(out, Entry{Token: Redacted, Kind: KindSecret, Value: NotKept})
	}
	return out
}

// Summary counts distinct tokens per kind. For "secret" and "overflow" it
// counts redacted occurrences, since those values are not kept.
func (m *Mapper) Summary() map[string]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]int)
	for _, e := range m.byToken {
		out[string(e.kind)]++
	}
	if m.secrets > 0 {
		out[string(KindSecret)] = m.secrets
	}
	if m.overflow > 0 {
		out[string(KindOverflow)] = m.overflow
	}
	return out
}

// ipKind classifies an address, or reports false for addresses that
// identify nobody.
func (m *Mapper) ipKind(a netip.Addr) (Kind, bool) {
	a = a.Unmap().WithZone("")
	if !a.IsValid() || a.IsUnspecified() || a.IsMulticast() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return "", false
	}
	for _, p := range m.nets {
		if p.Contains(a) {
			return KindInternalIP, true
		}
	}
	return KindExternalIP, true
}

// collapseSpace applies the PreserveStructure=false whitespace rule to a text
// without tokens.
func collapseSpace(s string) string {
	if !hasSpaceRun(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	writeCollapsed(&b, s)
	return b.String()
}

func hasSpaceRun(s string) bool {
	for i := 0; i+1 < len(s); i++ {
		if isSpace(s[i]) && isSpace(s[i+1]) {
			return true
		}
	}
	return false
}

// writeCollapsed writes t with each run of two or more whitespace bytes
// replaced by one space, or one newline if the run held a newline.
func writeCollapsed(b *strings.Builder, t string) {
	last := 0
	for i := 0; i < len(t); {
		if !isSpace(t[i]) {
			i++
			continue
		}
		j, nl := i, false
		for j < len(t) && isSpace(t[j]) {
			nl = nl || t[j] == '\n'
			j++
		}
		if j-i >= 2 {
			b.WriteString(t[last:i])
			if nl {
				b.WriteByte('\n')
			} else {
				b.WriteByte(' ')
			}
			last = j
		}
		i = j
	}
	b.WriteString(t[last:])
}
