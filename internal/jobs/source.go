package jobs

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"path/filepath"
	"strings"

	"github.com/loupe-sec/loupe/internal/event"
	"github.com/loupe-sec/loupe/internal/source"
	"github.com/loupe-sec/loupe/internal/store"
)

// Opener opens the events of an investigation's source. The sequence
// follows the conventions of source.Read: (nil, *source.LineError) for a
// bad record, after which reading goes on; any other error ends it.
type Opener func(ctx context.Context, src store.Source) (iter.Seq2[*event.Event, error], error)

// MaxFiles is the most files one "file" source may name.
const MaxFiles = 10000

// KindFile is the source kind of files on the server's disk, uploads
// included.
const KindFile = "file"

// ErrUnknownKind is returned for a source kind no opener handles.
var ErrUnknownKind = errors.New("unknown source kind")

// FileParams are the parameters of a "file" source: one path or several,
// read in order as one stream (correlations span the files).
type FileParams struct {
	Path  string   `json:"path,omitempty"`
	Paths []string `json:"paths,omitempty"`
	// Upload marks files spooled from an HTTP upload (by Spool, under the
	// data directory); they are removed when the investigation ends.
	Upload bool `json:"upload,omitempty"`
	// Names are the uploaded files' own names, for display.
	Names []string `json:"names,omitempty"`
	// MaxLineBytes is the longest accepted line; 0 = source's default.
	MaxLineBytes int `json:"max_line_bytes,omitempty"`
}

// All returns Path and Paths as one list.
func (p FileParams) All() []string {
	var out []string
	if p.Path != "" {
		out = append(out, p.Path)
	}
	return append(out, p.Paths...)
}

// ParseFileParams reads and checks the parameters of a "file" source.
func ParseFileParams(raw json.RawMessage) (FileParams, error) {
	var p FileParams
	if len(raw) == 0 {
		return p, errors.New("file source: params.path or params.paths is required")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return p, fmt.Errorf("file source: params: %w", err)
	}
	paths := p.All()
	if len(paths) == 0 {
		return p, errors.New("file source: params.path or params.paths is required")
	}
	if len(paths) > MaxFiles {
		return p, fmt.Errorf("file source: %d files, at most %d", len(paths), MaxFiles)
	}
	for _, path := range paths {
		if strings.TrimSpace(path) == "" {
			return p, errors.New("file source: empty path")
		}
	}
	if p.MaxLineBytes < 0 {
		return p, errors.New("file source: max_line_bytes is negative")
	}
	return p, nil
}

// OpenFiles is the Opener of "file" sources: the files are read in order
// by source.Read (NDJSON/JSONL, syslog, gzip by its magic bytes), each
// named by its path so event ids are the same on every read.
func OpenFiles(ctx context.Context, src store.Source) (iter.Seq2[*event.Event, error], error) {
	if src.Kind != KindFile {
		return nil, fmt.Errorf("%w %q", ErrUnknownKind, src.Kind)
	}
	p, err := ParseFileParams(src.Params)
	if err != nil {
		return nil, err
	}
	paths := p.All()
	for _, path := range paths {
		fi, err := os.Stat(path)
		if err != nil {
			return nil, fmt.Errorf("file source: %w", err)
		}
		if fi.IsDir() {
			return nil, fmt.Errorf("file source: %s is a directory", path)
		}
	}
	return source.ReadFiles(ctx, paths, source.Options{MaxLineBytes: p.MaxLineBytes}), nil
}

// fileFingerprint describes the files of a source as they are now: the
// same fingerprint on restart means the files read the same (same paths,
// sizes and modification times), so a checkpoint still points at the same
// event.
func fileFingerprint(src store.Source) (string, error) {
	p, err := ParseFileParams(src.Params)
	if err != nil {
		return "", err
	}
	type file struct {
		Path  string `json:"path"`
		Size  int64  `json:"size"`
		MTime int64  `json:"mtime"`
	}
	var fs []file
	for _, path := range p.All() {
		fi, err := os.Stat(path)
		if err != nil {
			return "", err
		}
		if !fi.Mode().IsRegular() {
			return "", fmt.Errorf("%s is not a regular file", path)
		}
		fs = append(fs, file{path, fi.Size(), fi.ModTime().UnixNano()})
	}
	b, err := json.Marshal(fs)
	return string(b), err
}

// spoolSuffix ends the names of spooled uploads.
const spoolSuffix = ".upload"

// ErrTooLarge is returned by Spool when the upload exceeds its limit.
var ErrTooLarge = errors.New("upload too large")

// Spool copies r, at most limit bytes, to a new file under dir/uploads
// and returns its path. A longer upload is removed and ErrTooLarge
// returned. The bytes are kept as sent (a gzip upload stays compressed;
// source.Read recognises it).
func Spool(dir string, r io.Reader, limit int64) (string, error) {
	if dir == "" {
		return "", errors.New("spool upload: no data directory")
	}
	up := filepath.Join(dir, "uploads")
	if err := os.MkdirAll(up, 0o700); err != nil {
		return "", fmt.Errorf("spool upload: %w", err)
	}
	var b [12]byte
	rand.Read(b[:])
	path := filepath.Join(up, hex.EncodeToString(b[:])+spoolSuffix)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("spool upload: %w", err)
	}
	n, err := io.Copy(f, io.LimitReader(r, limit+1))
	if err == nil && n > limit {
		err = fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limit)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		if errors.Is(err, ErrTooLarge) {
			return "", err
		}
		return "", fmt.Errorf("spool upload: %w", err)
	}
	return path, nil
}

// removeUploads deletes the spooled files of an upload source.
func removeUploads(src store.Source) {
	if src.Kind != KindFile {
		return
	}
	p, err := ParseFileParams(src.Params)
	if err != nil || !p.Upload {
		return
	}
	for _, path := range p.All() {
		// Only what Spool made: never a file the source merely names.
		if filepath.Base(filepath.Dir(path)) == "uploads" && strings.HasSuffix(path, spoolSuffix) {
			os.Remove(path)
		}
	}
}
