// Package source reads security events from NDJSON/JSONL (optionally gzip)
// and plain syslog streams and turns each line into an event.Event.
package source

import (
	"context"
	"fmt"
	"io"
	"iter"

	"github.com/loupe-sec/loupe/internal/event"
)

// Options tune reading.
type Options struct {
	// Name identifies the input (file name, "stdin", "http"); it seeds
	// derived event ids so they are stable for the same input.
	Name string
	// MaxLineBytes is the longest accepted line; longer lines yield a
	// *LineError and are skipped. 0 means DefaultMaxLineBytes.
	MaxLineBytes int
}

// DefaultMaxLineBytes is the default line size limit (1 MiB).
const DefaultMaxLineBytes = 1 << 20

// LineError reports one bad input line; reading goes on after it.
type LineError struct {
	Line int64
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }
func (e *LineError) Unwrap() error { return e.Err }

// Read yields the events of r in order. A malformed or oversized line yields
// (nil, *LineError) and reading continues; an I/O error or ctx cancellation
// ends the sequence with (nil, err).
func Read(ctx context.Context, r io.Reader, opt Options) iter.Seq2[*event.Event, error] {
	panic("TODO")
}

// ParseLine parses one input line (without its newline).
func ParseLine(line []byte, lineNo int64, opt Options) (*event.Event, error) {
	panic("TODO")
}
