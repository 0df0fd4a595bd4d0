package sigma

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Limits on one rule file, so a hostile file cannot exhaust memory.
const (
	maxFileBytes = 4 << 20
	maxNodes     = 200000
	maxDepth     = 64
)

type nodeKind uint8

const (
	kScalar nodeKind = iota
	kSeq
	kMap
)

// ynode is a YAML value as the rule compiler needs it: scalars keep their
// source text and their resolved tag (!!str, !!int, !!null, ...), so
// "0x10" or "010" stay as written; maps keep their key order.
type ynode struct {
	kind nodeKind
	tag  string
	val  string
	seq  []*ynode
	keys []string
	vals []*ynode
	line int
}

func (n *ynode) isNull() bool { return n == nil || (n.kind == kScalar && n.tag == "!!null") }

// get returns the value of a map key, or nil.
func (n *ynode) get(key string) *ynode {
	if n == nil || n.kind != kMap {
		return nil
	}
	if i := slices.Index(n.keys, key); i >= 0 {
		return n.vals[i]
	}
	return nil
}

// str returns a scalar's text ("" for null, maps and sequences).
func (n *ynode) str() string {
	if n == nil || n.kind != kScalar || n.tag == "!!null" {
		return ""
	}
	return n.val
}

// strs returns a scalar or a sequence of scalars as strings.
func (n *ynode) strs() []string {
	switch {
	case n == nil || n.isNull():
		return nil
	case n.kind == kScalar:
		return []string{n.val}
	case n.kind == kSeq:
		var out []string
		for _, x := range n.seq {
			if x.kind == kScalar && !x.isNull() {
				out = append(out, x.val)
			}
		}
		return out
	}
	return nil
}

// set replaces or adds a map key.
func (n *ynode) set(key string, v *ynode) {
	if i := slices.Index(n.keys, key); i >= 0 {
		n.vals[i] = v
		return
	}
	n.keys = append(n.keys, key)
	n.vals = append(n.vals, v)
}

func (n *ynode) without(key string) *ynode {
	out := &ynode{kind: kMap, line: n.line}
	for i, k := range n.keys {
		if k != key {
			out.keys = append(out.keys, k)
			out.vals = append(out.vals, n.vals[i])
		}
	}
	return out
}

// merge returns base with over merged in: maps merge key by key,
// recursively; anything else in over replaces what base holds.
func merge(base, over *ynode) *ynode {
	if base == nil || base.kind != kMap || over == nil || over.kind != kMap {
		return over
	}
	out := &ynode{kind: kMap, line: over.line}
	out.keys = append(out.keys, base.keys...)
	out.vals = append(out.vals, base.vals...)
	for i, k := range over.keys {
		if j := slices.Index(out.keys, k); j >= 0 {
			out.vals[j] = merge(out.vals[j], over.vals[i])
			continue
		}
		out.keys = append(out.keys, k)
		out.vals = append(out.vals, over.vals[i])
	}
	return out
}

// document is one rule document of a file, after the collection actions
// (global, reset, repeat) were applied.
type document struct {
	node  *ynode
	index int // 0-based document number in the file
	line  int
}

// parseDocuments reads the YAML documents of one rule file and applies
// Sigma's rule-collection actions: "action: global" is merged into every
// following document until "action: reset"; "action: repeat" takes the
// previous document and merges the new values over it.
func parseDocuments(data []byte) ([]document, error) {
	if len(data) > maxFileBytes {
		return nil, fmt.Errorf("file larger than %d bytes", maxFileBytes)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var (
		out    []document
		global *ynode
		prev   *ynode
	)
	budget := maxNodes
	for i := 0; ; i++ {
		var root yaml.Node
		err := dec.Decode(&root)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return out, fmt.Errorf("document %d: %w", i+1, err)
		}
		n, err := convert(&root, 0, &budget)
		if err != nil {
			return out, fmt.Errorf("document %d: %w", i+1, err)
		}
		if n == nil || n.isNull() {
			continue
		}
		if n.kind != kMap {
			return out, fmt.Errorf("document %d (line %d): a rule must be a mapping", i+1, n.line)
		}
		switch action := n.get("action").str(); action {
		case "global":
			global = n.without("action")
			continue
		case "reset":
			global = nil
			continue
		case "repeat":
			if prev == nil {
				return out, fmt.Errorf("document %d (line %d): action repeat without a previous rule", i+1, n.line)
			}
			n = merge(prev, n.without("action"))
		case "":
			n = merge(global, n)
		default:
			return out, fmt.Errorf("document %d (line %d): unknown action %q", i+1, n.line, action)
		}
		prev = n
		out = append(out, document{node: n, index: i, line: n.line})
	}
	return out, nil
}

// convert turns a yaml.Node into a ynode, resolving aliases, within a
// node budget and a depth limit.
func convert(y *yaml.Node, depth int, budget *int) (*ynode, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("line %d: nested deeper than %d levels", y.Line, maxDepth)
	}
	*budget--
	if *budget < 0 {
		return nil, fmt.Errorf("more than %d YAML nodes", maxNodes)
	}
	switch y.Kind {
	case yaml.DocumentNode:
		if len(y.Content) == 0 {
			return nil, nil
		}
		return convert(y.Content[0], depth+1, budget)
	case yaml.AliasNode:
		if y.Alias == nil {
			return nil, fmt.Errorf("line %d: unresolved alias", y.Line)
		}
		return convert(y.Alias, depth+1, budget)
	case yaml.ScalarNode:
		return &ynode{kind: kScalar, tag: y.ShortTag(), val: y.Value, line: y.Line}, nil
	case yaml.SequenceNode:
		n := &ynode{kind: kSeq, line: y.Line}
		for _, c := range y.Content {
			v, err := convert(c, depth+1, budget)
			if err != nil {
				return nil, err
			}
			n.seq = append(n.seq, v)
		}
		return n, nil
	case yaml.MappingNode:
		n := &ynode{kind: kMap, line: y.Line}
		for i := 0; i+1 < len(y.Content); i += 2 {
			k := y.Content[i]
			if k.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("line %d: map keys must be scalars", k.Line)
			}
			v, err := convert(y.Content[i+1], depth+1, budget)
			if err != nil {
				return nil, err
			}
			if slices.Contains(n.keys, k.Value) {
				return nil, fmt.Errorf("line %d: duplicate key %q", k.Line, k.Value)
			}
			n.keys = append(n.keys, k.Value)
			n.vals = append(n.vals, v)
		}
		return n, nil
	}
	return nil, fmt.Errorf("line %d: unexpected YAML node", y.Line)
}

// describe names a node kind for error messages.
func describe(n *ynode) string {
	switch {
	case n == nil:
		return "nothing"
	case n.kind == kMap:
		return "a mapping"
	case n.kind == kSeq:
		return "a list"
	case n.isNull():
		return "null"
	}
	return strings.TrimPrefix(n.tag, "!!") + " " + fmt.Sprintf("%q", n.val)
}
