package jobs

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"time"

	"github.com/loupe-sec/loupe/internal/event"
	"github.com/loupe-sec/loupe/internal/source/origin"
	"github.com/loupe-sec/loupe/internal/store"
)

// Sources other than "file" are read by package origin: evtx (files),
// loki, victorialogs, opensearch and elasticsearch. Their parameters are
// origin.Spec's fields (url, query, index, start, end, username, password,
// …), given inline in the source object or under "params". They are
// stored with the investigation as given, password included, so the store
// must be protected like the log stores it points at; the API never shows
// a password.

// Spec builds the origin.Spec of a non-file source and validates it.
func Spec(src store.Source) (origin.Spec, error) {
	var fields map[string]json.RawMessage
	if len(bytes.TrimSpace(src.Params)) > 0 {
		if err := json.Unmarshal(src.Params, &fields); err != nil {
			return origin.Spec{}, fmt.Errorf("%w: params: %w", origin.ErrSpec, err)
		}
	}
	if fields == nil { // no params, or JSON null
		fields = map[string]json.RawMessage{}
	}
	kind, _ := json.Marshal(src.Kind)
	fields["kind"] = kind
	b, err := json.Marshal(fields)
	if err != nil {
		return origin.Spec{}, err
	}
	return origin.ParseSpec(b)
}

// openOrigin is the Opener of the kinds package origin reads.
func openOrigin(ctx context.Context, src store.Source) (iter.Seq2[*event.Event, error], error) {
	s, err := Spec(src)
	if err != nil {
		return nil, err
	}
	return origin.Open(ctx, s)
}

// withRange pushes an investigation's time range down to a remote source
// that sets none itself, so the log store returns only those events (they
// are filtered again as they are read). origin's end is exclusive, the
// investigation's to inclusive: end = to + 1ns.
func withRange(src store.Source, from, to time.Time) store.Source {
	if src.Kind == KindFile || (from.IsZero() && to.IsZero()) {
		return src
	}
	var fields map[string]json.RawMessage
	if len(bytes.TrimSpace(src.Params)) > 0 {
		if err := json.Unmarshal(src.Params, &fields); err != nil {
			return src // reported by the opener
		}
	}
	if fields == nil { // no params, or JSON null
		fields = map[string]json.RawMessage{}
	}
	changed := false
	if _, ok := fields["start"]; !ok && !from.IsZero() {
		fields["start"], _ = json.Marshal(from.UTC())
		changed = true
	}
	if _, ok := fields["end"]; !ok && !to.IsZero() {
		fields["end"], _ = json.Marshal(to.UTC().Add(time.Nanosecond))
		changed = true
	}
	if !changed {
		return src
	}
	b, err := json.Marshal(fields)
	if err != nil {
		return src
	}
	return store.Source{Kind: src.Kind, Params: b}
}

// closedRange reports whether a remote source reads a fixed time range,
// from the investigation's or its own bounds: only then does reading it
// again give the same events.
func closedRange(inv store.Investigation) bool {
	s, err := Spec(withRange(inv.Source, inv.From, inv.To))
	if err != nil {
		return false
	}
	return !s.Start.IsZero() && !s.End.IsZero()
}
