package cluster

import (
	"net/netip"
	"strconv"

	"github.com/loupe-sec/loupe/internal/event"
)

// maxTokenBytes bounds one token; longer words are compared on their start.
const maxTokenBytes = 64

// maxKeyMasks bounds the "key=<MASK>" tokens interned by a Miner.
const maxKeyMasks = 4096

// eventTokens appends the masked tokens of ev to dst: a source token, then
// the words of its text.
func (m *Miner) eventTokens(dst []string, ev *event.Event) []string {
	limit := m.opt.MaxTokens
	switch {
	case ev.Rule != "":
		dst = append(dst, clip(ev.Rule, maxTokenBytes))
	case ev.Channel != "":
		dst = append(dst, clip(ev.Channel, maxTokenBytes))
		if ev.EventID != 0 {
			dst = append(dst, m.eventID(ev.EventID))
		}
	case ev.Program != "":
		dst = append(dst, clip(ev.Program, maxTokenBytes))
	default:
		dst = append(dst, ev.Format.String())
	}
	text := ev.Message
	if ev.CommandLine != "" {
		text = ev.CommandLine
	}
	if text != "" {
		return m.appendTokens(dst, text, limit)
	}
	// A Windows record without message or command line: its fields.
	field := func(name, v string) {
		if v != "" && v != "-" && len(dst)+2 <= limit {
			dst = append(dst, name, m.mask(v))
		}
	}
	field("account", ev.TargetUser)
	field("from", ev.SrcIP)
	if ev.LogonType != 0 {
		field("logon", m.eventID(ev.LogonType))
	}
	if ev.Channel != "" {
		field("service", ev.Program)
	}
	field("process", ev.Image)
	field("parent", ev.ParentImage)
	return dst
}

// eventID returns the decimal text of n without allocating after the first
// time (bounded table).
func (m *Miner) eventID(n int) string {
	if s, ok := m.idText[n]; ok {
		return s
	}
	s := strconv.Itoa(n)
	if len(m.idText) < maxKeyMasks {
		m.idText[n] = s
	}
	return s
}

// Tokens splits text into masked tokens the way a Miner does, at most max
// of them (0: 40). It is exported for tests and tools.
func Tokens(text string, max int) []string {
	if max <= 0 {
		max = 40
	}
	m := NewMiner(Options{MaxTokens: max})
	return m.appendTokens(nil, text, max)
}

func (m *Miner) appendTokens(dst []string, text string, limit int) []string {
	for i := 0; i < len(text) && len(dst) < limit; {
		for i < len(text) && isSpace(text[i]) {
			i++
		}
		j := i
		for j < len(text) && !isSpace(text[j]) {
			j++
		}
		if j > i {
			dst = append(dst, m.mask(text[i:j]))
		}
		i = j
	}
	return dst
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

// mask returns the mask of a word shaped like a number, address, hex id or
// path, "key=<MASK>" for such a value after a key, or the word itself (cut
// to maxTokenBytes).
func (m *Miner) mask(w string) string {
	core := trimPunct(w)
	if core == "" {
		return clip(w, maxTokenBytes)
	}
	for i := 1; i < len(core)-1; i++ {
		if core[i] != '=' {
			continue
		}
		k := shape(trimPunct(core[i+1:]))
		if k == "" {
			break
		}
		key := core[:i+1]
		if len(key) > maxTokenBytes {
			break
		}
		byMask := m.keyMask[key+k] // no allocation for the lookup
		if byMask != "" {
			return byMask
		}
		s := key + k
		if len(m.keyMask) < maxKeyMasks {
			m.keyMask[s] = s
		}
		return s
	}
	if k := shape(core); k != "" {
		return k
	}
	return clip(w, maxTokenBytes)
}

func trimPunct(s string) string {
	for len(s) > 0 && isPunct(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && isPunct(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

func isPunct(c byte) bool {
	switch c {
	case '"', '\'', '`', '(', ')', '[', ']', '{', '}', ',', ';', '<', '>':
		return true
	}
	return false
}

// shape classifies a word: MaskIP, MaskHex, MaskNum, MaskPath or "".
func shape(w string) string {
	if len(w) == 0 {
		return ""
	}
	if isIP(w) {
		return MaskIP
	}
	if isHex(w) {
		return MaskHex
	}
	digits, seps := 0, 0
	for i := 0; i < len(w); i++ {
		c := w[i]
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c == '/' || c == '\\':
			seps++
		}
	}
	if isPath(w, seps) {
		return MaskPath
	}
	if digits > 0 && 2*digits >= len(w) {
		return MaskNum
	}
	return ""
}

// isIP: an IPv4 or IPv6 address, optionally with a port or in brackets.
func isIP(w string) bool {
	if j := indexByte(w, ']'); j > 0 { // [v6]:port, the "[" maybe trimmed already
		rest := w[j+1:]
		if rest != "" && (rest[0] != ':' || len(rest) == 1 || !allDigits(rest[1:])) {
			return false
		}
		w = w[:j]
		if w != "" && w[0] == '[' {
			w = w[1:]
		}
		if w == "" {
			return false
		}
	}
	colons, dots := 0, 0
	for i := 0; i < len(w); i++ {
		c := w[i]
		switch {
		case c == ':':
			colons++
		case c == '.':
			dots++
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f', c >= 'A' && c <= 'F', c == '%':
		default:
			return false
		}
	}
	switch {
	case dots == 3 && colons <= 1:
		if colons == 1 {
			w = w[:indexByte(w, ':')]
		}
		_, err := netip.ParseAddr(w)
		return err == nil
	case colons >= 2:
		_, err := netip.ParseAddr(w)
		return err == nil
	}
	return false
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

// isHex: 0x-prefixed hex, a UUID, or 8+ hex digits with both a digit and
// a letter (or 12+ of them: container ids, hashes).
func isHex(w string) bool {
	if len(w) > 2 && w[0] == '0' && (w[1] == 'x' || w[1] == 'X') {
		return allHex(w[2:])
	}
	if len(w) == 36 && w[8] == '-' && w[13] == '-' && w[18] == '-' && w[23] == '-' {
		return allHex(w[:8]) && allHex(w[9:13]) && allHex(w[14:18]) && allHex(w[19:23]) && allHex(w[24:])
	}
	if len(w) < 8 || !allHex(w) {
		return false
	}
	digits, letters := 0, 0
	for i := 0; i < len(w); i++ {
		if w[i] <= '9' {
			digits++
		} else {
			letters++
		}
	}
	return digits > 0 && (letters > 0 || len(w) >= 12) && len(w) >= 8
}

func allHex(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// isPath: an absolute Unix path with at least two separators, a Windows
// drive path, or a UNC path.
func isPath(w string, seps int) bool {
	switch {
	case w[0] == '/' && seps >= 2:
		return true
	case len(w) > 2 && w[1] == ':' && (w[2] == '\\' || w[2] == '/') && (w[0]|0x20 >= 'a' && w[0]|0x20 <= 'z'):
		return true
	case len(w) > 2 && w[0] == '\\' && w[1] == '\\':
		return true
	}
	return false
}
