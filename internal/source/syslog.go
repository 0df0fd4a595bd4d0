package source

import (
	"strings"

	"github.com/loupe-sec/loupe/internal/event"
)

// parseSyslog reads one plain-text syslog line: RFC 5424
// ("<34>1 2024-01-01T10:00:00Z host app 123 - - msg"), RFC 3164
// ("[<13>]Mar 19 23:34:17 host sshd[123]: msg") or ISO-timestamp syslog
// ("2024-01-01T10:00:00.123+00:00 host sshd[1]: msg").
func parseSyslog(ev *event.Event, s string) error {
	rest := s
	pri := false
	if len(rest) > 2 && rest[0] == '<' {
		if j := strings.IndexByte(rest[:min(len(rest), 5)], '>'); j > 1 {
			if _, ok := digits(rest[1:j]); ok {
				rest, pri = rest[j+1:], true
			}
		}
	}
	if pri && len(rest) > 2 && rest[0] >= '1' && rest[0] <= '9' && rest[1] == ' ' {
		return parse5424(ev, rest[2:])
	}
	if len(rest) > 10 && rest[4] == '-' && rest[0] >= '0' && rest[0] <= '9' {
		stamp, after := cut(rest)
		t, ok := parseISO(stamp)
		if !ok {
			return ErrUnknownLine
		}
		ev.Time = t
		return parseHostTag(ev, after)
	}
	t, n, ok := parseStamp(rest)
	if !ok {
		return ErrUnknownLine
	}
	ev.Time = t
	return parseHostTag(ev, strings.TrimLeft(rest[n:], " "))
}

// parseHostTag reads "host tag[pid]: message" after the timestamp. The host
// may be missing ("sshd[1]: msg") and so may the tag.
func parseHostTag(ev *event.Event, s string) error {
	first, after := cut(s)
	if first == "" {
		return ErrUnknownLine
	}
	if isTag(first) && (strings.HasSuffix(first, "]:") || after == "" || !isTag(word(after))) {
		ev.Program = tagProgram(first)
		ev.Message = strings.TrimLeft(after, " ")
		return nil
	}
	ev.Host = first
	tag, msg := cut(after)
	if isTag(tag) {
		ev.Program = tagProgram(tag)
		ev.Message = strings.TrimLeft(msg, " ")
		return nil
	}
	ev.Message = after
	return nil
}

// isTag reports whether w looks like "prog:" or "prog[pid]:".
func isTag(w string) bool {
	n := len(w)
	return n > 1 && n <= 64 && w[n-1] == ':' && w[0] != '[' && w[0] != '('
}

func tagProgram(tag string) string {
	tag = tag[:len(tag)-1]
	if i := strings.IndexByte(tag, '['); i > 0 {
		return tag[:i]
	}
	return tag
}

// parse5424 reads "TIMESTAMP HOST APP PROCID MSGID SD [MSG]" (after "<PRI>1 ").
func parse5424(ev *event.Event, s string) error {
	stamp, s := cut(s)
	if stamp != "-" {
		t, ok := parseISO(stamp)
		if !ok {
			return ErrUnknownLine
		}
		ev.Time = t
	}
	var host, app string
	host, s = cut(s)
	app, s = cut(s)
	_, s = cut(s) // procid
	_, s = cut(s) // msgid
	if host == "" || app == "" {
		return ErrUnknownLine
	}
	s = skipStructuredData(s)
	s = strings.TrimPrefix(s, "\ufeff")
	if host != "-" {
		ev.Host = host
	}
	if app != "-" {
		ev.Program = app
	}
	ev.Message = s
	return nil
}

// skipStructuredData skips "-" or one or more "[id k="v" …]" elements and
// the space after them.
func skipStructuredData(s string) string {
	if strings.HasPrefix(s, "-") {
		return strings.TrimPrefix(s[1:], " ")
	}
	for len(s) > 0 && s[0] == '[' {
		inQuote := false
		i := 1
		for ; i < len(s); i++ {
			c := s[i]
			if c == '\\' && inQuote {
				i++
				continue
			}
			if c == '"' {
				inQuote = !inQuote
			} else if c == ']' && !inQuote {
				break
			}
		}
		if i >= len(s) {
			return ""
		}
		s = s[i+1:]
	}
	return strings.TrimPrefix(s, " ")
}

// cut splits s at its first space.
func cut(s string) (string, string) {
	if i := strings.IndexByte(s, ' '); i >= 0 {
		return s[:i], s[i+1:]
	}
	return s, ""
}
