package origin

import (
	"encoding/json"
	"errors"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/loupe-sec/loupe/internal/event"
	"github.com/loupe-sec/loupe/internal/source"
)

// recordReader turns the records of one origin into events through
// source.ParseLine, numbering them and keeping their ids stable.
type recordReader struct {
	maxLine int
	n       int64  // records read so far; Event.Line of the next is n+1
	buf     []byte // scratch for rebuilt records
	tree    fieldTree
}

// field is one label or stored field of a log-store record.
type field struct{ key, value string }

// view looks at b as a string without copying; b must not change after.
func view(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// readOnly looks at s as bytes without copying, for callers that only read
// (source.ParseLine copies its input).
func readOnly(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// jsonObject reports whether b looks like a JSON object (first non-space
// byte '{'); ParseLine validates it.
func jsonObject(b []byte) bool {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '{':
			return true
		}
		return false
	}
	return false
}

// line parses one record given as a JSON object or text line. name and ts
// (Unix ns, 0 if unknown) seed the derived id, so a record without an id of
// its own gets the same id whatever its position. A record without a
// timestamp of its own takes ts.
func (r *recordReader) line(b []byte, name string, ts int64) (*event.Event, error) {
	r.n++
	if len(b) > r.maxLine {
		return nil, &source.LineError{Line: r.n, Err: source.ErrLineTooLong}
	}
	ev, err := source.ParseLine(b, ts, source.Options{Name: name, MaxLineBytes: r.maxLine})
	if err != nil {
		var le *source.LineError
		if errors.As(err, &le) {
			return nil, &source.LineError{Line: r.n, Err: le.Err}
		}
		return nil, &source.LineError{Line: r.n, Err: err}
	}
	ev.Line = r.n
	if ev.Time.IsZero() && ts > 0 {
		ev.Time = time.Unix(0, ts).UTC()
	}
	return ev, nil
}

// record rebuilds a log-store record that is not a JSON line (a text line
// with its Loki labels, a VictoriaLogs row) as one JSON object and parses
// it. Dotted field names are nested again ("winlog.event_data.Image" →
// {"winlog":{"event_data":{"Image":…}}}), except below output_fields, whose
// Falco keys contain dots themselves. A record with rule and priority fields
// is a Falco alert: its message becomes "output" and a comma-separated tags
// value a list. Otherwise the message is "message". The time is added as
// "time" unless a field has that name.
func (r *recordReader) record(fields []field, msg string, name string, ts int64) (*event.Event, error) {
	r.buf = appendRecord(r.buf[:0], &r.tree, fields, msg, ts)
	return r.line(r.buf, name, ts)
}

func appendRecord(b []byte, t *fieldTree, fields []field, msg string, ts int64) []byte {
	hasRule, hasPriority := false, false
	for _, f := range fields {
		switch f.key {
		case "rule":
			hasRule = true
		case "priority":
			hasPriority = true
		}
	}
	falco := hasRule && hasPriority
	msgKey := "message"
	if falco {
		msgKey = "output"
	}
	t.reset()
	if ts > 0 {
		t.setKey("time", time.Unix(0, ts).UTC().Format(time.RFC3339Nano), false)
	}
	for _, f := range fields {
		if f.key == "" {
			continue
		}
		raw := false
		v := f.value
		if len(v) > 1 && (v[0] == '[' || v[0] == '{') && json.Valid([]byte(v)) {
			raw = true
		} else if falco && f.key == "tags" {
			v, raw = tagList(v), true
		}
		t.setKey(f.key, v, raw)
	}
	if msg != "" {
		t.setIfAbsent(msgKey, msg)
	}
	return t.appendJSON(b)
}

// fieldPath splits a dotted field name into the path it came from,
// appending the segments to buf.
func fieldPath(buf []string, key string) []string {
	const falcoFields = "output_fields."
	if strings.HasPrefix(key, falcoFields) && len(key) > len(falcoFields) {
		return append(buf, "output_fields", key[len(falcoFields):])
	}
	if !strings.Contains(key, ".") || key[0] == '.' || key[len(key)-1] == '.' ||
		strings.Contains(key, "..") || strings.Count(key, ".") >= maxFieldDepth {
		return append(buf, key)
	}
	for {
		i := strings.IndexByte(key, '.')
		if i < 0 {
			return append(buf, key)
		}
		buf = append(buf, key[:i])
		key = key[i+1:]
	}
}

const maxFieldDepth = 16

// tagList renders "a,b,c" as the JSON list ["a","b","c"].
func tagList(s string) string {
	var b []byte
	b = append(b, '[')
	n := 0
	for _, tag := range strings.Split(s, ",") {
		tag = strings.TrimSpace(tag)
		if tag == "" {
			continue
		}
		if n > 0 {
			b = append(b, ',')
		}
		b = appendString(b, tag)
		n++
	}
	return string(append(b, ']'))
}

// fieldTree is an ordered tree of field values, reused between records
// (no allocation per record once it has grown).
type fieldTree struct {
	nodes []treeNode // nodes[0] is the root object
	path  []string   // scratch for fieldPath
}

// treeNode is a value or an object; an object's members are a linked list
// of node indexes (0 ends it: the root is nobody's member).
type treeNode struct {
	key, value        string
	raw               bool // value is JSON text
	leaf              bool // value, not object
	first, last, next int
}

func (t *fieldTree) reset() {
	t.nodes = append(t.nodes[:0], treeNode{})
}

// setKey stores value under a dotted field name.
func (t *fieldTree) setKey(key, value string, raw bool) {
	t.path = fieldPath(t.path[:0], key)
	t.set(t.path, value, raw)
}

func (t *fieldTree) lookup(parent int, key string) int {
	for k := t.nodes[parent].first; k != 0; k = t.nodes[k].next {
		if t.nodes[k].key == key {
			return k
		}
	}
	return -1
}

func (t *fieldTree) child(parent int, key string) int {
	if k := t.lookup(parent, key); k >= 0 {
		return k
	}
	t.nodes = append(t.nodes, treeNode{key: key})
	k := len(t.nodes) - 1
	if p := &t.nodes[parent]; p.first == 0 {
		p.first, p.last = k, k
	} else {
		t.nodes[p.last].next = k
		p.last = k
	}
	return k
}

// set stores value at path. When the path collides with a value already
// there, nothing is lost: a value below a leaf is stored at the root under
// its dotted name, and a leaf replacing an object moves the object's values
// to the root under their dotted names. The same name twice: the later
// value wins.
func (t *fieldTree) set(path []string, value string, raw bool) {
	n := 0
	for _, seg := range path[:len(path)-1] {
		k := t.lookup(n, seg)
		switch {
		case k < 0:
			k = t.child(n, seg)
		case t.nodes[k].leaf:
			t.flat(strings.Join(path, "."), value, raw)
			return
		}
		n = k
	}
	k := t.lookup(n, path[len(path)-1])
	if k < 0 {
		k = t.child(n, path[len(path)-1])
	} else if !t.nodes[k].leaf {
		t.hoist(k, strings.Join(path, "."))
	}
	nd := &t.nodes[k]
	nd.leaf, nd.value, nd.raw, nd.first, nd.last = true, value, raw, 0, 0
}

// hoist copies the values below node k to the root as dotted names.
func (t *fieldTree) hoist(k int, prefix string) {
	for c := t.nodes[k].first; c != 0; c = t.nodes[c].next {
		name := prefix + "." + t.nodes[c].key
		if t.nodes[c].leaf {
			t.flat(name, t.nodes[c].value, t.nodes[c].raw)
		} else {
			t.hoist(c, name)
		}
	}
}

func (t *fieldTree) flat(key, value string, raw bool) {
	k := t.child(0, key)
	nd := &t.nodes[k]
	if !nd.leaf && nd.first != 0 {
		return // cannot happen: root objects come from names without dots
	}
	nd.leaf, nd.value, nd.raw = true, value, raw
}

func (t *fieldTree) setIfAbsent(key, value string) {
	if t.lookup(0, key) >= 0 {
		return
	}
	k := t.child(0, key)
	t.nodes[k].leaf, t.nodes[k].value = true, value
}

func (t *fieldTree) appendJSON(b []byte) []byte { return t.appendNode(b, 0) }

func (t *fieldTree) appendNode(b []byte, i int) []byte {
	n := &t.nodes[i]
	if n.leaf {
		if n.raw {
			return append(b, n.value...)
		}
		return appendString(b, n.value)
	}
	b = append(b, '{')
	for k := n.first; k != 0; k = t.nodes[k].next {
		if k != n.first {
			b = append(b, ',')
		}
		b = appendString(b, t.nodes[k].key)
		b = append(b, ':')
		b = t.appendNode(b, k)
	}
	return append(b, '}')
}

// appendString appends s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < 0x80 {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, "\ufffd"...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
