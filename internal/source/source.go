// Package source reads security events from NDJSON/JSONL (optionally gzip)
// and plain syslog streams and turns each line into an event.Event. Binary
// Windows event logs (.evtx) are recognised by their magic bytes and their
// records read as if they were EVTX-as-JSON lines.
//
// Each line is classified on its own: a line whose first non-space byte is
// '{' is a JSON object, anything else is read as a syslog line (RFC 3164,
// RFC 5424 or ISO-timestamp syslog). JSON objects are recognised as a
// Timesketch export (nested "_source" or flat with "_id"/"_index"), a
// Windows event log record (EVTX rendered as JSON, or winlogbeat/ECS), a
// Falco alert, a plaso record, or any other JSON log. Each JSON line is
// validated with gjson and then read by a scanner that visits only the
// members it needs and never unescapes values it does not use; no map is
// built per event.
//
// Leniency: Python's json.dumps (used by the Timesketch client) writes a
// float NaN as a bare NaN token, which is not JSON. A line that is invalid
// only because of bare NaN, Infinity or -Infinity tokens outside strings is
// accepted with those tokens read as null. Any other invalid JSON yields a
// *LineError.
//
// Memory: every event owns one private copy of its line. Event.Raw and the
// string fields of the event share that copy, so Raw must not be modified.
// For plaso Windows records, whose event data exists only as XML in
// "xml_string", and for EVTX JSON whose EventData is a
// {"Data":[{"@Name":…,"#text":…}]} list, the parser appends the named data
// items to a copy of Raw as a JSON object under the key "loupe_event_data"
// and points DataPath at it, so Event.Data works the same for every Windows
// record shape.
//
// Syslog lines carry no year; the current UTC year is assumed unless that
// puts the time more than a day in the future, in which case the previous
// year is used. Times without a zone are taken as UTC.
package source

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"

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
	// RefuseEVTX makes a binary .evtx stream an error instead of reading
	// it. Set it where anonymous clients supply the input: the EVTX library
	// trusts the counts inside a chunk, so a crafted file (with valid
	// checksums) can make it allocate without bound.
	RefuseEVTX bool
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

// Errors wrapped by LineError.
var (
	ErrLineTooLong = errors.New("line too long")
	ErrInvalidJSON = errors.New("invalid JSON")
	ErrUnknownLine = errors.New("neither a JSON object nor a syslog line")
	ErrEmptyLine   = errors.New("empty line")
)

// ctxCheckEvery is how many lines Read reads between checks of ctx.
const ctxCheckEvery = 1024

// Read yields the events of r in order. A malformed or oversized line yields
// (nil, *LineError) and reading continues; an I/O error or ctx cancellation
// ends the sequence with (nil, err). A stream starting with the gzip magic
// bytes is decompressed transparently; one (then) starting with the .evtx
// magic "ElfFile\x00" is read as a binary Windows event log, record by
// record, each rendered as EVTX-as-JSON (see evtxbin.go). Read is also what
// serves an upload: pass the HTTP request body as r.
func Read(ctx context.Context, r io.Reader, opt Options) iter.Seq2[*event.Event, error] {
	return func(yield func(*event.Event, error) bool) {
		if err := ctx.Err(); err != nil {
			yield(nil, err)
			return
		}
		br := bufio.NewReaderSize(r, 64<<10)
		if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
			zr, err := gzip.NewReader(br)
			if err != nil {
				yield(nil, fmt.Errorf("read %s: gzip: %w", opt.displayName(), err))
				return
			}
			defer zr.Close()
			br = bufio.NewReaderSize(zr, 64<<10)
		}
		if magic, _ := br.Peek(len(evtxMagic)); isEVTX(magic) {
			if opt.RefuseEVTX {
				yield(nil, fmt.Errorf("read %s: %w: binary .evtx input is not accepted here; convert it to JSON lines first", opt.displayName(), ErrEVTX))
				return
			}
			readEVTX(ctx, br, &opt, yield) // binary Windows event log (evtxbin.go)
			return
		}
		lr := lineReader{r: br, max: opt.maxLine()}
		for {
			if lr.no%ctxCheckEvery == 0 {
				if err := ctx.Err(); err != nil {
					yield(nil, err)
					return
				}
			}
			line, err := lr.next()
			if err != nil {
				if err == io.EOF {
					return
				}
				if errors.Is(err, ErrLineTooLong) {
					if !yield(nil, &LineError{Line: lr.no, Err: err}) {
						return
					}
					continue
				}
				yield(nil, fmt.Errorf("read %s: %w", opt.displayName(), err))
				return
			}
			if isBlank(line) {
				continue
			}
			ev, perr := parse(own(line), lr.no, &opt)
			if perr != nil {
				if !yield(nil, &LineError{Line: lr.no, Err: perr}) {
					return
				}
				continue
			}
			if !yield(ev, nil) {
				return
			}
		}
	}
}

// ParseLine parses one input line (without its newline). It copies line, so
// the caller may reuse it.
func ParseLine(line []byte, lineNo int64, opt Options) (*event.Event, error) {
	line = bytes.TrimSuffix(line, []byte{'\r'})
	if isBlank(line) {
		return nil, &LineError{Line: lineNo, Err: ErrEmptyLine}
	}
	if len(line) > opt.maxLine() {
		return nil, &LineError{Line: lineNo, Err: fmt.Errorf("%w: %d bytes, limit %d", ErrLineTooLong, len(line), opt.maxLine())}
	}
	ev, err := parse(own(line), lineNo, &opt)
	if err != nil {
		return nil, &LineError{Line: lineNo, Err: err}
	}
	return ev, nil
}

// Open opens a named input for Read: "-" is standard input, anything else a
// file. Gzip is detected by Read, not by the file name.
func Open(path string) (io.ReadCloser, error) {
	if path == "-" {
		return io.NopCloser(os.Stdin), nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open input: %w", err)
	}
	return f, nil
}

// ReadFiles reads the named inputs one after another ("-" is stdin), each
// with its path as Options.Name so ids differ between files. Line numbers
// restart at 1 for each file; an error opening a file ends the sequence.
func ReadFiles(ctx context.Context, paths []string, opt Options) iter.Seq2[*event.Event, error] {
	return func(yield func(*event.Event, error) bool) {
		for _, p := range paths {
			rc, err := Open(p)
			if err != nil {
				yield(nil, err)
				return
			}
			o := opt
			o.Name = p
			if p == "-" {
				o.Name = "stdin"
			}
			stop := false
			for ev, err := range Read(ctx, rc, o) {
				if !yield(ev, err) {
					stop = true
					break
				}
				var le *LineError
				if err != nil && !errors.As(err, &le) {
					stop = true
					break
				}
			}
			rc.Close()
			if stop {
				return
			}
		}
	}
}

func (o *Options) maxLine() int {
	if o.MaxLineBytes <= 0 {
		return DefaultMaxLineBytes
	}
	return o.MaxLineBytes
}

func (o *Options) displayName() string {
	if o.Name == "" {
		return "input"
	}
	return o.Name
}

func isBlank(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' && c != '\f' && c != '\v' {
			return false
		}
	}
	return true
}
