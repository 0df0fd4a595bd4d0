package source

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// The Windows event XML that plaso stores in xml_string is regular and
// machine-written, so a small scanner is enough: it reads
// <EventData><Data Name="X">value</Data>…</EventData> and, for events that
// have no EventData, the child elements of the first element inside
// <UserData>. It never fails; malformed XML just yields fewer items.

// scanXMLData calls fn for each named data item of the event.
func scanXMLData(xml string, fn func(name, val string)) {
	if body, ok := xmlSection(xml, "EventData"); ok {
		for {
			i := strings.Index(body, "<Data")
			if i < 0 {
				return
			}
			body = body[i+len("<Data"):]
			end := strings.IndexByte(body, '>')
			if end < 0 {
				return
			}
			tag := body[:end]
			body = body[end+1:]
			name := xmlAttr(tag, "Name")
			var val string
			if !strings.HasSuffix(tag, "/") {
				close := strings.Index(body, "</Data>")
				if close < 0 {
					return
				}
				val, body = body[:close], body[close+len("</Data>"):]
			}
			if name != "" {
				fn(name, xmlUnescape(val))
			}
		}
	}
	body, ok := xmlSection(xml, "UserData")
	if !ok {
		return
	}
	// Enter the first child element (e.g. <LogFileCleared …>).
	i := strings.IndexByte(body, '<')
	if i < 0 {
		return
	}
	end := strings.IndexByte(body[i:], '>')
	if end < 0 || strings.HasSuffix(body[i:i+end], "/") {
		return
	}
	body = body[i+end+1:]
	for {
		i := strings.IndexByte(body, '<')
		if i < 0 || i+1 >= len(body) || body[i+1] == '/' {
			return
		}
		end := strings.IndexByte(body[i:], '>')
		if end < 0 {
			return
		}
		tag := body[i+1 : i+end]
		body = body[i+end+1:]
		if strings.HasSuffix(tag, "/") {
			fn(elementName(tag[:len(tag)-1]), "")
			continue
		}
		name := elementName(tag)
		close := strings.Index(body, "</"+name+">")
		if close < 0 {
			return
		}
		fn(name, xmlUnescape(body[:close]))
		body = body[close+len(name)+3:]
	}
}

// xmlSection returns the content between <name…> and </name>.
func xmlSection(xml, name string) (string, bool) {
	i := strings.Index(xml, "<"+name)
	if i < 0 {
		return "", false
	}
	rest := xml[i+1+len(name):]
	end := strings.IndexByte(rest, '>')
	if end < 0 || (end > 0 && rest[end-1] == '/') {
		return "", false
	}
	if end > 0 && rest[0] != ' ' {
		return "", false // a longer element name such as <EventDataX>
	}
	rest = rest[end+1:]
	close := strings.Index(rest, "</"+name+">")
	if close < 0 {
		return "", false
	}
	return rest[:close], true
}

// xmlElementText returns the text of the first <name>text</name>.
func xmlElementText(xml, name string) string {
	s, _ := xmlSection(xml, name)
	return xmlUnescape(strings.TrimSpace(s))
}

// xmlAttr returns the value of name="…" (or '…') inside a start tag.
func xmlAttr(tag, name string) string {
	for off := 0; off < len(tag); {
		i := strings.Index(tag[off:], name)
		if i < 0 {
			return ""
		}
		i += off
		j := i + len(name)
		off = j
		if i > 0 && tag[i-1] != ' ' && tag[i-1] != '\t' && tag[i-1] != '\n' {
			continue
		}
		if j+1 >= len(tag) || tag[j] != '=' || (tag[j+1] != '"' && tag[j+1] != '\'') {
			continue
		}
		q := tag[j+1]
		end := strings.IndexByte(tag[j+2:], q)
		if end < 0 {
			return ""
		}
		return xmlUnescape(tag[j+2 : j+2+end])
	}
	return ""
}

func elementName(tag string) string {
	if i := strings.IndexAny(tag, " \t\r\n"); i >= 0 {
		return tag[:i]
	}
	return tag
}

// xmlUnescape decodes the predefined entities and numeric character
// references; it returns s itself when there is nothing to decode.
func xmlUnescape(s string) string {
	if strings.IndexByte(s, '&') < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '&' {
			b.WriteByte(c)
			continue
		}
		semi := strings.IndexByte(s[i:], ';')
		if semi < 0 || semi > 12 {
			b.WriteByte(c)
			continue
		}
		ent := s[i+1 : i+semi]
		switch ent {
		case "amp":
			b.WriteByte('&')
		case "lt":
			b.WriteByte('<')
		case "gt":
			b.WriteByte('>')
		case "quot":
			b.WriteByte('"')
		case "apos":
			b.WriteByte('\'')
		default:
			r, ok := charRef(ent)
			if !ok {
				b.WriteByte(c)
				continue
			}
			b.WriteRune(r)
		}
		i += semi
	}
	return b.String()
}

func charRef(ent string) (rune, bool) {
	if len(ent) < 2 || ent[0] != '#' {
		return 0, false
	}
	var n uint64
	var err error
	if ent[1] == 'x' || ent[1] == 'X' {
		n, err = strconv.ParseUint(ent[2:], 16, 32)
	} else {
		n, err = strconv.ParseUint(ent[1:], 10, 32)
	}
	if err != nil || !utf8.ValidRune(rune(n)) {
		return 0, false
	}
	return rune(n), true
}
