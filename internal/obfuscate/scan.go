package obfuscate

import (
	"net/netip"
	"slices"
	"strings"
)

// span is one value to replace: s[start:end] becomes the token of value.
// With PreserveStructure, value == s[start:end]; otherwise an address span
// may also cover its port and brackets.
type span struct {
	start, end int
	kind       Kind
	value      string
}

// scanner collects the spans of one text. Detectors run from most to least
// specific; a span that overlaps one found earlier is dropped, so a secret
// inside a URL is never re-read as a host, and so on.
type scanner struct {
	m     *Mapper
	s     string
	spans []span // sorted by start, non-overlapping
}

func (sc *scanner) detect() {
	sc.privateKeys()
	sc.prefixedSecrets()
	sc.urls()
	sc.keyValues()
	sc.words()
	sc.emails()
	sc.cgroupContainers()
	sc.homeDirs()
	sc.domainUsers()
	sc.ipv6()
	sc.dotted()
	sc.sweep()
}

// add records a span unless it is empty or overlaps an earlier one.
func (sc *scanner) add(start, end int, kind Kind, value string) bool {
	if start < 0 || end > len(sc.s) || start >= end {
		return false
	}
	i, _ := slices.BinarySearchFunc(sc.spans, start, func(sp span, start int) int { return sp.start - start })
	if i > 0 && sc.spans[i-1].end > start {
		return false
	}
	if i < len(sc.spans) && sc.spans[i].start < end {
		return false
	}
	sc.spans = slices.Insert(sc.spans, i, span{start, end, kind, value})
	return true
}

func (sc *scanner) addSecret(start, end int) { sc.add(start, end, KindSecret, "") }

// addValue records s[start:end] as a value of kind.
func (sc *scanner) addValue(start, end int, kind Kind) bool {
	if start < 0 || end > len(sc.s) || start >= end {
		return false
	}
	return sc.add(start, end, kind, sc.s[start:end])
}

// addUser records a user name, reading "name@domain" as an e-mail address
// and "DOMAIN\name" as the name alone.
func (sc *scanner) addUser(start, end int) {
	start, end = trimQuotes(sc.s, start, end)
	v := sc.s[start:end]
	if v == "" || len(v) > 128 || allDigits(v) || v == "-1" || nobody[strings.ToLower(v)] {
		return
	}
	if at := strings.IndexByte(v, '@'); at >= 0 {
		if e := emailDomainEnd(sc.s, start+at+1); e == end && at > 0 {
			sc.addValue(start, end, KindEmail)
		} else if at > 0 {
			sc.addUser(start, start+at)
		}
		return
	}
	if bs := strings.LastIndexByte(v, '\\'); bs >= 0 {
		sc.addUser(start+bs+1, end)
		return
	}
	sc.addValue(start, end, KindUser)
}

// addHost records a host name; a trailing :port stays outside the token
// and addresses are left to the address detectors.
func (sc *scanner) addHost(start, end int) {
	start, end = trimQuotes(sc.s, start, end)
	v := sc.s[start:end]
	if c := strings.LastIndexByte(v, ':'); c > 0 && allDigits(v[c+1:]) && strings.IndexByte(v[:c], ':') < 0 {
		end = start + c
		v = v[:c]
	}
	if v == "" || len(v) > 255 || noHost[strings.ToLower(v)] {
		return
	}
	if _, err := netip.ParseAddr(strings.Trim(v, "[]")); err == nil {
		return
	}
	if strings.Contains(v, "://") || strings.IndexByte(v, '@') >= 0 {
		return // a URL or address: the other detectors read it
	}
	sc.addValue(start, end, KindHost)
}

// addIP records an address found at s[start:end]; spanStart and spanEnd may
// widen the replaced text to brackets and port when structure is not kept.
func (sc *scanner) addIP(start, end, spanStart, spanEnd int, a netip.Addr) {
	kind, ok := sc.m.ipKind(a)
	if !ok {
		return
	}
	if sc.m.preserve {
		spanStart, spanEnd = start, end
	}
	sc.add(spanStart, spanEnd, kind, sc.s[start:end])
}

// wholeValue applies a Fields key hint to the entire value.
func (sc *scanner) wholeValue(class keyClass) {
	n := len(sc.s)
	switch class {
	case keySecret:
		sc.addSecret(0, n)
	case keyMaybeSecret:
		if highEntropy(strings.TrimSpace(sc.s)) {
			sc.addSecret(0, n)
		}
	case keyAuth:
		sc.authValue(0, n)
	case keyUser:
		sc.addUser(0, n)
	case keyHost:
		sc.addHost(0, n)
	case keyContainer:
		if isContainerID(sc.s) {
			sc.addValue(0, n, KindContainer)
		} else if !strings.Contains(sc.s, "://") {
			sc.addHost(0, n)
		}
	}
}

// escAt reports that s[i] is the letter of a JSON escape (\n, \r, \t), so
// a name starting at i really starts at i+1.
func escAt(s string, i int) bool {
	return i >= 1 && i < len(s) && s[i-1] == '\\' && (s[i] == 'n' || s[i] == 'r' || s[i] == 't')
}

// boundaryBefore reports that nothing word-like touches position i from
// the left, counting a JSON escape as a boundary.
func boundaryBefore(s string, i int) bool {
	return i == 0 || !isWordByte(s[i-1]) || escAt(s, i-1)
}

func trimQuotes(s string, start, end int) (int, int) {
	for start < end && (s[start] == '"' || s[start] == '\'' || s[start] == ' ') {
		start++
	}
	for end > start && (s[end-1] == '"' || s[end-1] == '\'' || s[end-1] == ' ') {
		end--
	}
	return start, end
}

// privateKeys redacts whole PEM private key blocks. A block without its END
// line is redacted to the end of the text.
func (sc *scanner) privateKeys() {
	s := sc.s
	for i := 0; ; {
		j := strings.Index(s[i:], "-----BEGIN ")
		if j < 0 {
			return
		}
		start := i + j
		label := start + len("-----BEGIN ")
		k := strings.Index(s[label:min(len(s), label+80)], "-----")
		if k < 0 {
			i = label
			continue
		}
		body := label + k + 5
		if !strings.Contains(s[label:label+k], "PRIVATE KEY") {
			i = body
			continue
		}
		end := len(s)
		if e := strings.Index(s[body:], "-----END "); e >= 0 {
			e += body + len("-----END ")
			if f := strings.Index(s[e:min(len(s), e+80)], "-----"); f >= 0 {
				end = e + f + 5
			}
		}
		sc.addSecret(start, end)
		i = end
	}
}

// prefixedSecrets redacts keys recognisable by their prefix: AWS access key
// ids, GitHub, Slack, Google, Stripe and OpenAI-style keys, and JWTs.
func (sc *scanner) prefixedSecrets() {
	s := sc.s
	for i := 0; i < len(s); {
		if !isAlnum(s[i]) {
			i++
			continue
		}
		switch s[i] { // the first bytes of the prefixes below
		case 'A', 'g', 'x', 's', 'r', 'e':
			if end := prefixedSecretEnd(s, i); end > i {
				sc.addSecret(i, end)
				i = end
				continue
			}
		}
		i = run(s, i, cDigit|cAlpha) // skip to the next word
	}
}

func prefixedSecretEnd(s string, i int) int {
	rest := s[i:]
	has := func(p string) bool { return strings.HasPrefix(rest, p) }
	// body reads the key after a prefix and checks its length.
	body := func(prefix, minLen int, k uint16) int {
		e := run(s, i+prefix, k)
		if e-(i+prefix) < minLen {
			return -1
		}
		return e
	}
	switch {
	case has("AKIA"), has("ASIA"):
		if e := body(4, 16, cUpperDigit); e == i+20 {
			return e
		}
	case has("AIza"):
		return body(4, 35, cB64URL)
	case has("github_pat_"):
		return body(11, 20, cAlnumUnder)
	case has("ghp_"), has("gho_"), has("ghs_"), has("ghu_"), has("ghr_"):
		return body(4, 20, cDigit|cAlpha)
	case len(rest) > 5 && has("xox") && strings.IndexByte("abprse", rest[3]) >= 0 && rest[4] == '-':
		return body(5, 10, cAlnumDash)
	case has("sk_live_"), has("sk_test_"), has("rk_live_"), has("rk_test_"):
		return body(8, 10, cDigit|cAlpha)
	case has("sk-"):
		return body(3, 20, cB64URL)
	case has("eyJ"):
		return jwtEnd(s, i)
	}
	return -1
}

// jwtEnd reads header.payload.signature where header and payload are
// base64url JSON objects (both start with "eyJ").
func jwtEnd(s string, i int) int {
	e := run(s, i, cB64URL)
	if e-i < 10 || e >= len(s) || s[e] != '.' || !strings.HasPrefix(s[e+1:], "eyJ") {
		return -1
	}
	e = run(s, e+1, cB64URL)
	if e >= len(s) || s[e] != '.' {
		return -1
	}
	return run(s, e+1, cB64URL)
}

// urls reads scheme://[user[:password]@]host[:port]: the user is a user,
// the password a secret and a named host a host (addresses are left to the
// address detectors). docker://, containerd:// and cri-o:// carry a
// container id instead.
func (sc *scanner) urls() {
	s := sc.s
	for i := 0; ; {
		j := strings.Index(s[i:], "://")
		if j < 0 {
			return
		}
		p := i + j
		i = p + 3
		a := p
		for a > 0 && (isAlnum(s[a-1]) || s[a-1] == '+' || s[a-1] == '-' || s[a-1] == '.') {
			a--
		}
		if a == p {
			continue
		}
		q := p + 3
		switch strings.ToLower(s[a:p]) {
		case "docker", "containerd", "cri-o":
			if e := run(s, q, cHex); isContainerID(s[q:e]) && (e == len(s) || !isWordByte(s[e])) {
				sc.addValue(q, e, KindContainer)
			}
			continue
		}
		e := q
		for e < len(s) && strings.IndexByte("/?#\"'<>\\`|{} \t\r\n", s[e]) < 0 {
			e++
		}
		hostStart := q
		if at := strings.LastIndexByte(s[q:e], '@'); at >= 0 {
			info := s[q : q+at]
			if c := strings.IndexByte(info, ':'); c >= 0 {
				sc.addUser(q, q+c)
				sc.addSecret(q+c+1, q+at)
			} else {
				sc.addUser(q, q+at)
			}
			hostStart = q + at + 1
		}
		if hostStart < e && s[hostStart] != '[' {
			hostEnd := hostStart + run(s[hostStart:e], 0, cLabel)
			if h := s[hostStart:hostEnd]; h != "" && !looksLikeIPv4(h) {
				sc.addHost(hostStart, hostEnd)
			}
		}
		i = e
	}
}

func looksLikeIPv4(h string) bool {
	for i := 0; i < len(h); i++ {
		if !isDigit(h[i]) && h[i] != '.' {
			return false
		}
	}
	return true
}

// keyValues reads key=value and key: value pairs (bare, quoted, JSON and
// JSON-escaped) and replaces the value according to what the key names.
//
// Nested JSON objects are followed loosely, by counting braces: inside
// "user": {...} a "name" key is a user name, inside "host" or "container"
// a "name" is a host and inside "container" an "id" a container id, and
// inside a secret-named object every value is a secret.
func (sc *scanner) keyValues() {
	s := sc.s
	type parent struct {
		class keyClass
		depth int
	}
	var parents []parent
	depth := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '{':
			depth++
			continue
		case '}':
			depth--
			for len(parents) > 0 && parents[len(parents)-1].depth > depth {
				parents = parents[:len(parents)-1]
			}
			continue
		case '=', ':':
		default:
			continue
		}
		if i+1 < len(s) && (s[i+1] == c || (c == ':' && s[i+1] == '/')) {
			i++
			continue
		}
		ks, ke := keyBefore(s, i)
		if ks < 0 {
			continue
		}
		class := classifyPath(s[ks:ke])
		if class == keyNone && ks >= 2 && s[ks-1] == ' ' { // "Account Name:"
			ws := ks - 1
			for ws > 0 && isAlpha(s[ws-1]) {
				ws--
			}
			if escAt(s, ws) {
				ws++
			}
			if ws < ks-1 && boundaryBefore(s, ws) {
				class = classifyPair(s[ws:ks-1], s[ks:ke])
			}
		}
		if class == keyNone && len(parents) > 0 && parents[len(parents)-1].depth == depth {
			class = nestedClass(parents[len(parents)-1].class, s[ks:ke])
		}
		if p := skipBlank(s, i+1); p < len(s) && s[p] == '{' {
			if class != keyNone && len(parents) < 16 {
				parents = append(parents, parent{class, depth + 1})
			}
			continue
		}
		if class == keyNone {
			continue
		}
		secret := class == keySecret || class == keyMaybeSecret || class == keyAuth
		vs, ve, next := valueAt(s, i+1, secret)
		if vs >= ve {
			continue
		}
		switch class {
		case keySecret:
			if s[ks:ke] == "PWD" && s[vs] == '/' {
				continue // sudo's working directory, not a password
			}
			sc.addSecret(vs, ve)
		case keyMaybeSecret:
			if highEntropy(s[vs:ve]) {
				sc.addSecret(vs, ve)
			}
		case keyAuth:
			next = sc.authValue(vs, ve)
		case keyUser:
			sc.addUser(vs, ve)
		case keyHost:
			sc.addHost(vs, ve)
		case keyContainer:
			if isContainerID(s[vs:ve]) {
				sc.addValue(vs, ve, KindContainer)
			} else if !strings.Contains(s[vs:ve], "://") {
				sc.addHost(vs, ve)
			}
		}
		if next > i+1 {
			i = next - 1
		}
	}
}

// nestedClass reads a key inside an object whose own key had class parent.
func nestedClass(parent keyClass, key string) keyClass {
	switch {
	case parent == keySecret:
		return keySecret
	case strings.EqualFold(key, "name") && (parent == keyUser || parent == keyHost):
		return parent
	case strings.EqualFold(key, "name") && parent == keyContainer:
		return keyHost
	case strings.EqualFold(key, "id") && parent == keyContainer:
		return keyContainer
	}
	return keyNone
}

func skipBlank(s string, p int) int {
	for p < len(s) && (s[p] == ' ' || s[p] == '\t') {
		p++
	}
	return p
}

// keyBefore returns the key that ends just before the separator at sep.
// Spaces may stand between the key (or its closing quote) and the separator.
func keyBefore(s string, sep int) (int, int) {
	j := sep
	for j > 0 && s[j-1] == ' ' {
		j--
	}
	if j > 0 && (s[j-1] == '"' || s[j-1] == '\'') {
		j--
		if j > 0 && s[j-1] == '\\' {
			j--
		}
	}
	ke := j
	for j > 0 && ke-j <= 64 && isKeyByte(s[j-1]) {
		j--
	}
	if escAt(s, j) {
		j++
	}
	if j >= ke || ke-j > 64 {
		return -1, -1
	}
	return j, ke
}

// valueAt reads the value after a separator: quoted ("…", '…', \"…\") or
// bare. It returns the value bounds and the index after the value and its
// closing quote.
func valueAt(s string, p int, secret bool) (vs, ve, next int) {
	for p < len(s) {
		if s[p] == ' ' || s[p] == '\t' {
			p++
		} else if s[p] == '\\' && p+1 < len(s) && s[p+1] == 't' {
			p += 2
		} else {
			break
		}
	}
	if p >= len(s) || strings.IndexByte("{[(<", s[p]) >= 0 {
		return p, p, p
	}
	switch {
	case s[p] == '"' || s[p] == '\'':
		q := s[p]
		e := p + 1
		for e < len(s) && s[e] != q && s[e] != '\n' {
			if s[e] == '\\' {
				if e+1 < len(s) && s[e+1] == 'n' {
					break // escaped newline ends an unclosed value
				}
				e++
			}
			e++
		}
		e = min(e, len(s))
		return p + 1, e, min(e+1, len(s))
	case s[p] == '\\' && p+1 < len(s) && s[p+1] == '"':
		vs = p + 2
		e := strings.Index(s[vs:], `\"`)
		if e < 0 {
			e = len(s) - vs
		}
		return vs, vs + e, min(vs+e+2, len(s))
	}
	e := p
	for e < len(s) && !valueStop(s, e, secret) {
		e++
	}
	return p, e, e
}

func valueStop(s string, e int, secret bool) bool {
	c := s[e]
	switch c {
	case ' ', '\t', '\n', '\r', '"', '\'', '&', ',', ';':
		return true
	case '\\':
		return e+1 < len(s) && strings.IndexByte(`nrt"`, s[e+1]) >= 0
	case ')', ']', '}', '>', '<', '(', '|':
		return !secret
	}
	return false
}

// authValue redacts the credential of an Authorization value in
// s[vs:ve] (the value as valueAt read it) and returns where scanning goes on.
// The scheme word (Bearer, Basic, ...) stays.
func (sc *scanner) authValue(vs, ve int) int {
	s := sc.s
	quoted := vs > 0 && (s[vs-1] == '"' || s[vs-1] == '\'')
	w := run(s[:ve], vs, cAlnumDash)
	isScheme := w < ve && s[w] == ' ' || (!quoted && w == ve && ve < len(s) && s[ve] == ' ')
	if !isScheme || w == vs {
		sc.addSecret(vs, ve)
		return ve
	}
	c := w
	for c < len(s) && s[c] == ' ' {
		c++
	}
	end := ve
	if !quoted {
		end = c
		if strings.EqualFold(s[vs:w], "digest") { // name="value", ... up to the end of the line
			for end < len(s) && s[end] != '\n' && s[end] != '\r' &&
				!(s[end] == '\\' && end+1 < len(s) && s[end+1] == 'n') {
				end++
			}
		} else {
			for end < len(s) && !valueStop(s, end, true) {
				end++
			}
		}
	}
	sc.addSecret(c, end)
	return end
}

// words reads whitespace-separated words for phrases: "user alice",
// "for alice from", "sudo: alice :", "Bearer <token>", "--password x",
// "<key word> <random value>", "container <id>" and mysql's -u <user> and
// -p<password>.
func (sc *scanner) words() {
	s := sc.s
	mysql := strings.Contains(s, "mysql") || strings.Contains(s, "mariadb")
	var w [3][2]int // the last three words, oldest first
	n := 0
	for i := 0; i < len(s); {
		for i < len(s) && isSpace(s[i]) {
			i++
		}
		if i >= len(s) {
			break
		}
		j := i
		for j < len(s) && !isSpace(s[j]) {
			j++
		}
		w[0], w[1], w[2] = w[1], w[2], [2]int{i, j}
		n++
		if n >= 2 {
			sc.phrase(w, n, mysql)
		}
		i = j
	}
}

// trimWord strips punctuation around a word.
func trimWord(s string, w [2]int) (int, int) {
	a, b := w[0], w[1]
	for a < b && !isAlnum(s[a]) && strings.IndexByte("\"'([{<`", s[a]) >= 0 {
		a++
	}
	for b > a && !isAlnum(s[b-1]) && strings.IndexByte("\"',.;:)]}>`", s[b-1]) >= 0 {
		b--
	}
	return a, b
}

func (sc *scanner) phrase(w [3][2]int, n int, mysql bool) {
	s := sc.s
	ca, cb := trimWord(s, w[2])
	cur := s[ca:cb]
	pa, pb := trimWord(s, w[1])
	prev := s[pa:pb]
	rawPrev := s[w[1][0]:w[1][1]]
	flag := keyNone
	if strings.HasPrefix(rawPrev, "-") && isFlag(rawPrev) {
		flag = classifyKey(rawPrev)
	}
	// A name may be followed by more, as in "root(uid=0)".
	na, nb := ca, run(s[:cb], ca, cName)

	switch {
	case len(prev) == 6 && strings.EqualFold(prev, "bearer") && len(cur) >= 8 && tokenish(cur):
		sc.addSecret(ca, cb)
	case flag == keySecret:
		sc.addSecret(ca, cb)
	case flag == keyUser && nameish(cur):
		sc.addUser(ca, cb)
	case flag == keyHost:
		sc.addHost(ca, cb)
	case len(prev) == 4 && strings.EqualFold(prev, "user") && nb > na && !notUserWords[strings.ToLower(s[na:nb])]:
		sc.addUser(na, nb)
	case len(prev) == 9 && strings.EqualFold(prev, "container") && isContainerID(cur):
		sc.addValue(ca, cb, KindContainer)
	case len(cur) >= 16 && isFlag(prev) && secretWord(prev) && highEntropy(cur):
		sc.addSecret(ca, cb)
	}
	if n >= 3 {
		p2a, p2b := trimWord(s, w[0])
		p2 := s[p2a:p2b]
		rawCur := s[w[2][0]:w[2][1]]
		if p2 == "for" && cur == "from" && nameish(prev) && !notUserWords[strings.ToLower(prev)] {
			sc.addUser(pa, pb)
		}
		if rawCur == ":" && strings.HasSuffix(s[w[0][0]:w[0][1]], "sudo:") && nameish(prev) {
			sc.addUser(pa, pb)
		}
	}
	if mysql {
		if s[w[1][0]:w[1][1]] == "-u" && nameish(cur) {
			sc.addUser(ca, cb)
		}
		raw := s[w[2][0]:w[2][1]]
		if len(raw) > 2 && raw[0] == '-' && raw[1] == 'p' {
			e := w[2][1]
			for e > w[2][0]+2 && (s[e-1] == '"' || s[e-1] == '\'') {
				e--
			}
			sc.addSecret(w[2][0]+2, e)
		}
	}
}

// isFlag reports a word made only of key bytes (a key or --option).
func isFlag(w string) bool { return w != "" && run(w, 0, cKey) == len(w) }

func nameish(w string) bool {
	if w == "" || len(w) > 128 {
		return false
	}
	for i := 0; i < len(w); i++ {
		if !isNameByte(w[i]) && w[i] != '@' && w[i] != '\\' {
			return false
		}
	}
	return true
}

func tokenish(w string) bool { return run(w, 0, cToken) == len(w) }

// emails reads local@domain.tld. "name@<IPv4>" (ssh targets) yields the
// name as a user; the address is read by the address detector.
func (sc *scanner) emails() {
	s := sc.s
	for i := 0; ; {
		j := strings.IndexByte(s[i:], '@')
		if j < 0 {
			return
		}
		at := i + j
		i = at + 1
		ls := at
		for ls > 0 && is(s[ls-1], cMail) {
			ls--
		}
		if escAt(s, ls) {
			ls++
		}
		for ls < at && s[ls] == '.' {
			ls++
		}
		if ls == at {
			continue
		}
		if de := emailDomainEnd(s, at+1); de > 0 {
			sc.addValue(ls, de, KindEmail)
			i = de
			continue
		}
		if e := run(s, at+1, cLabel); looksIPv4At(s, at+1, e) {
			sc.addUser(ls, at)
		}
	}
}

func looksIPv4At(s string, a, e int) bool {
	_, err := netip.ParseAddr(strings.TrimRight(s[a:e], "."))
	return err == nil
}

// emailDomainEnd returns the end of a mail domain starting at d, or -1.
func emailDomainEnd(s string, d int) int {
	e := run(s, d, cLabel)
	if u := strings.IndexByte(s[d:e], '_'); u >= 0 {
		e = d + u
	}
	for e > d && (s[e-1] == '.' || s[e-1] == '-') {
		e--
	}
	dom := s[d:e]
	dot := strings.LastIndexByte(dom, '.')
	if dot <= 0 || len(dom)-dot-1 < 2 {
		return -1
	}
	for k := dot + 1; k < len(dom); k++ {
		if !isAlpha(dom[k]) {
			return -1
		}
	}
	return e
}

// cgroupContainers reads 64-hex container ids in cgroup paths and scope
// names: /docker/<id>, docker-<id>.scope, cri-containerd-<id>, crio-<id>,
// libpod-<id>.
func (sc *scanner) cgroupContainers() {
	s := sc.s
	for i := 0; i < len(s); {
		if !isHex(s[i]) {
			i++
			continue
		}
		e := run(s, i, cHex)
		if e-i == 64 && (e == len(s) || !isAlnum(s[e])) && isContainerID(s[i:e]) {
			before := s[max(0, i-12):i]
			for _, p := range [...]string{"docker/", "docker-", "containerd-", "crio-", "libpod-"} {
				if strings.HasSuffix(before, p) {
					sc.addValue(i, e, KindContainer)
					break
				}
			}
		}
		i = run(s, e, cDigit|cAlpha)
	}
}

// homeDirs reads the user directory in /home/<name>, /Users/<name> and
// C:\Users\<name> (single or JSON-escaped backslashes).
func (sc *scanner) homeDirs() {
	s := sc.s
	for _, p := range [...]string{"home", "sers"} {
		for i := 0; ; {
			j := strings.Index(s[i:], p)
			if j < 0 {
				break
			}
			a := homeDirStart(s, i+j, p)
			i += j + len(p)
			if a < 0 {
				continue
			}
			e := a
			for e < len(s) && strings.IndexByte("/\\ \t\r\n\"':;,)]}>|", s[e]) < 0 {
				e++
			}
			name := s[a:e]
			if name == "" || name[0] == '$' || name[0] == '%' || name[0] == '{' || name[0] == '~' || notHomeDirs[strings.ToLower(name)] {
				continue
			}
			sc.addUser(a, e)
		}
	}
}

// homeDirStart checks that the match of p ("home" or "sers") at i belongs
// to /home/, /Users/, \Users\ or \\Users\\ and returns where the name starts,
// or -1.
func homeDirStart(s string, i int, p string) int {
	a := i
	if p == "sers" {
		if a == 0 || (s[a-1] != 'U' && s[a-1] != 'u') {
			return -1
		}
		a--
	}
	e := i + len(p)
	switch {
	case a >= 1 && s[a-1] == '/' && e < len(s) && s[e] == '/':
		return e + 1
	case p == "home":
		return -1
	case a >= 2 && s[a-2:a] == `\\` && strings.HasPrefix(s[e:], `\\`):
		return e + 2
	case a >= 1 && s[a-1] == '\\' && e < len(s) && s[e] == '\\':
		return e + 1
	}
	return -1
}

// domainUsers reads DOMAIN\name, where DOMAIN is an upper-case NetBIOS name
// at the start of a word and name is not followed by more path. Registry
// hives are not domains.
func (sc *scanner) domainUsers() {
	s := sc.s
	for i := 0; ; {
		j := strings.IndexByte(s[i:], '\\')
		if j < 0 {
			return
		}
		bs := i + j
		sep := 1
		if bs+1 < len(s) && s[bs+1] == '\\' {
			sep = 2
		}
		i = bs + sep
		d := bs
		for d > 0 && bs-d < 16 && (isUpper(s[d-1]) || isDigit(s[d-1]) || s[d-1] == '-') {
			d--
		}
		if d == bs || (d > 0 && (isKeyByte(s[d-1]) || s[d-1] == '\\' || s[d-1] == '/')) {
			continue
		}
		switch s[d:bs] {
		case "HKLM", "HKCU", "HKCR", "HKU", "HKCC":
			continue
		}
		hasLetter := false
		for k := d; k < bs; k++ {
			hasLetter = hasLetter || isUpper(s[k])
		}
		a := bs + sep
		e := run(s, a, cName)
		for e > a && s[e-1] == '.' {
			e--
		}
		if !hasLetter || e == a || (e < len(s) && (s[e] == '\\' || s[e] == '/')) {
			continue
		}
		sc.addUser(a, e)
	}
}

// ipv6 reads IPv6 addresses, bracketed or not. Candidates holding a dot
// (::ffff:10.0.0.5) are left to the IPv4 reader, which replaces the IPv4
// part with the same token as the plain address.
func (sc *scanner) ipv6() {
	s := sc.s
	next := 0
	for i := 0; ; {
		j := strings.IndexByte(s[i:], ':')
		if j < 0 {
			return
		}
		c := i + j
		i = c + 1
		if c < next {
			continue
		}
		a := c
		for a > 0 && (isHex(s[a-1]) || s[a-1] == ':') {
			a--
		}
		e := run(s, c, cIPv6)
		next = e
		if (a > 0 && (isWordByte(s[a-1]) || s[a-1] == '.') && !escAt(s, a-1)) || (e < len(s) && isWordByte(s[e])) {
			continue
		}
		cand := s[a:e]
		if strings.IndexByte(cand, '.') >= 0 || strings.Count(cand, ":") < 2 || strings.IndexAny(cand, "0123456789") < 0 {
			continue
		}
		addr, err := netip.ParseAddr(cand)
		if err != nil && strings.HasSuffix(cand, ":") && !strings.HasSuffix(cand, "::") {
			e--
			addr, err = netip.ParseAddr(s[a:e])
		}
		if err != nil {
			continue
		}
		spanStart, spanEnd := a, e
		if a > 0 && s[a-1] == '[' && e < len(s) && s[e] == ']' {
			spanStart, spanEnd = a-1, e+1
			if spanEnd < len(s) && s[spanEnd] == ':' {
				if p := run(s, spanEnd+1, cDigit); p > spanEnd+1 {
					spanEnd = p
				}
			}
		}
		sc.addIP(a, e, spanStart, spanEnd, addr)
	}
}

// dotted reads each word that contains a dot as IPv4 addresses (with an
// optional :port) or, failing that, as a host name.
func (sc *scanner) dotted() {
	s := sc.s
	next := 0
	for i := 0; ; {
		j := strings.IndexByte(s[i:], '.')
		if j < 0 {
			return
		}
		d := i + j
		i = d + 1
		if d < next {
			continue
		}
		a := d
		for a > 0 && is(s[a-1], cLabel) {
			a--
		}
		b := run(s, d, cLabel)
		next = b
		if sc.ipv4s(a, b) {
			continue
		}
		sc.hostName(a, b)
	}
}

// ipv4s reads every IPv4 address in the word s[a:b]; it reports whether it
// found one.
func (sc *scanner) ipv4s(a, b int) bool {
	s := sc.s
	found := false
	for k := a; k < b; k++ {
		if !isDigit(s[k]) || (k > 0 && (isAlnum(s[k-1]) || s[k-1] == '.') && !escAt(s, k-1)) {
			continue
		}
		e := ipv4End(s, k)
		if e < 0 {
			continue
		}
		addr, err := netip.ParseAddr(s[k:e])
		if err != nil {
			continue
		}
		found = true
		spanEnd := e
		if e < len(s) && s[e] == ':' {
			if p := run(s, e+1, cDigit); p > e+1 && p-e-1 <= 5 && (p == len(s) || !isAlnum(s[p]) && s[p] != ':') {
				spanEnd = p
			}
		}
		sc.addIP(k, e, k, spanEnd, addr)
		k = e
	}
	return found
}

// ipv4End returns the end of four dot-separated groups of 1-3 digits at k
// that are not followed by more of the same, or -1.
func ipv4End(s string, k int) int {
	e := k
	for part := 0; part < 4; part++ {
		if part > 0 {
			if e >= len(s) || s[e] != '.' {
				return -1
			}
			e++
		}
		p := run(s, e, cDigit)
		if p == e || p-e > 3 {
			return -1
		}
		e = p
	}
	if e < len(s) && (isAlnum(s[e]) || (s[e] == '.' && e+1 < len(s) && isDigit(s[e+1]))) {
		return -1
	}
	return e
}

// hostName reads s[a:b] as a fully qualified host name.
func (sc *scanner) hostName(a, b int) {
	s := sc.s
	if escAt(s, a) {
		a++
	}
	for a < b && (s[a] == '.' || s[a] == '-') {
		a++
	}
	for b > a && (s[b-1] == '.' || s[b-1] == '-') {
		b--
	}
	if isFQDN(s[a:b]) && !keyShaped(s, b) {
		sc.addValue(a, b, KindHost)
	}
}

// keyShaped reports that the word ending at b is a key or a call:
// followed by '=', ':', '":', '\":' or '('.
func keyShaped(s string, b int) bool {
	if b < len(s) && s[b] == '\\' {
		b++
	}
	if b < len(s) && s[b] == '"' {
		b++
	}
	return b < len(s) && (s[b] == '=' || s[b] == ':' || s[b] == '(')
}

func isFQDN(h string) bool {
	if len(h) < 4 || len(h) > 253 || strings.IndexByte(h, '_') >= 0 {
		return false
	}
	labels := 1 + strings.Count(h, ".")
	if labels < 2 {
		return false
	}
	for l := range strings.SplitSeq(h, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
	}
	first := h[:strings.IndexByte(h, '.')]
	if labels >= 3 && javaRoots[first] || first == "java" || first == "javax" {
		return false
	}
	tld := h[strings.LastIndexByte(h, '.')+1:]
	lower := strings.ToLower(tld)
	if tld != lower && tld != strings.ToUpper(tld) {
		return false // CamelCase: a code identifier such as System.Net
	}
	for i := 0; i < len(tld); i++ {
		if !isAlpha(tld[i]) {
			return false
		}
	}
	return tlds[lower] || (labels >= 3 && ambiguousTLDs[lower])
}

// sweep replaces, as whole words, the user, host, container and e-mail
// values already found in this text wherever else they occur in it, and the
// Options' known users and hosts.
func (sc *scanner) sweep() {
	var vals []known
	for _, sp := range sc.spans {
		switch sp.kind {
		case KindUser, KindHost, KindContainer, KindEmail:
		default:
			continue
		}
		if len(sp.value) < 3 || allDigits(sp.value) || len(vals) >= 256 {
			continue
		}
		if len(vals) > 64 || !slices.Contains(vals, known{sp.kind, sp.value}) {
			vals = append(vals, known{sp.kind, sp.value})
		}
	}
	vals = append(vals, sc.m.known...)
	if len(vals) == 0 {
		return
	}
	if len(vals) <= 8 {
		for _, v := range vals {
			sc.sweepOne(v)
		}
		return
	}
	// Many values: one pass over word starts, looking values up by their
	// first word, so the cost stays linear in the text.
	byFirst := make(map[string][]known, len(vals))
	for _, v := range vals {
		if f := run(v.value, 0, cWord); f > 0 {
			byFirst[v.value[:f]] = append(byFirst[v.value[:f]], v)
		} else {
			sc.sweepOne(v)
		}
	}
	s := sc.s
	for i := 0; i < len(s); {
		if !isWordByte(s[i]) {
			i++
			continue
		}
		w := run(s, i, cWord)
		if boundaryBefore(s, i) {
			for _, v := range byFirst[s[i:w]] {
				if e := i + len(v.value); strings.HasPrefix(s[i:], v.value) && (e == len(s) || !isWordByte(s[e])) {
					sc.add(i, e, v.kind, v.value)
				}
			}
		}
		i = w
	}
}

// sweepOne replaces every whole-word occurrence of one value.
func (sc *scanner) sweepOne(v known) {
	s := sc.s
	for i := 0; ; {
		j := strings.Index(s[i:], v.value)
		if j < 0 {
			return
		}
		a := i + j
		e := a + len(v.value)
		if boundaryBefore(s, a) && (e == len(s) || !isWordByte(s[e])) {
			sc.add(a, e, v.kind, v.value)
		}
		i = a + 1
	}
}
