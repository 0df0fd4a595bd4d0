package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// corpus is the set of base lines the synthetic stream repeats.
type corpus struct {
	name  string
	lines [][]byte
	bytes int64
}

// loadCorpus reads the shared datasets when ../shared is present, otherwise
// the repository's own synthetic corpora under testdata/.
func loadCorpus(shared, repo string) (*corpus, error) {
	var files []string
	name := "shared (EVTX-ATTACK-SAMPLES + Falco)"
	if m, _ := filepath.Glob(filepath.Join(shared, "data", "evtx-attack-samples.jsonl.gz")); len(m) > 0 {
		files = append(files, m...)
		f, _ := filepath.Glob(filepath.Join(shared, "data", "falco", "*.jsonl"))
		files = append(files, f...)
	}
	if len(files) == 0 {
		// The Timesketch files repeat the Windows and Linux events in
		// another shape; like the shared data, the stream holds each once.
		name = "repo testdata (attack + benign; EVTX JSON, Falco, syslog, app JSON)"
		for _, g := range []string{"attack/*", "benign/*"} {
			m, _ := filepath.Glob(filepath.Join(repo, "testdata", g))
			for _, p := range m {
				if filepath.Ext(p) != ".md" && !strings.HasPrefix(filepath.Base(p), "timesketch-") {
					files = append(files, p)
				}
			}
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no corpus found under %s or %s/testdata", shared, repo)
	}
	c := &corpus{name: name}
	for _, p := range files {
		if err := c.add(p); err != nil {
			return nil, err
		}
	}
	if len(c.lines) == 0 {
		return nil, fmt.Errorf("corpus %s is empty", name)
	}
	return c, nil
}

func (c *corpus) add(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var r io.Reader = f
	if filepath.Ext(path) == ".gz" {
		gz, err := gzip.NewReader(f)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		defer gz.Close()
		r = gz
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 4<<20)
	for sc.Scan() {
		l := bytes.TrimSpace(sc.Bytes())
		if len(l) == 0 {
			continue
		}
		c.lines = append(c.lines, append([]byte(nil), l...))
		c.bytes += int64(len(l) + 1)
	}
	return sc.Err()
}

// stream is an io.Reader producing n events: the corpus lines repeated, each
// JSON line given a deterministic fresh "_id" (copy number and line number)
// so every event is distinct and ids are stable from run to run.
type stream struct {
	c    *corpus
	n    int64 // events still to produce
	i    int   // next line in corpus
	copy int
	buf  []byte
	off  int
}

func newStream(c *corpus, n int64) *stream { return &stream{c: c, n: n} }

func (s *stream) Read(p []byte) (int, error) {
	for s.off >= len(s.buf) {
		if s.n == 0 {
			return 0, io.EOF
		}
		s.fill()
	}
	k := copy(p, s.buf[s.off:])
	s.off += k
	return k, nil
}

// fill renders the next batch of lines into buf.
func (s *stream) fill() {
	s.buf, s.off = s.buf[:0], 0
	for s.n > 0 && len(s.buf) < 256<<10 {
		l := s.c.lines[s.i]
		if len(l) > 1 && l[0] == '{' && s.copy > 0 {
			s.buf = append(s.buf, `{"_id":"s`...)
			s.buf = strconv.AppendInt(s.buf, int64(s.copy), 10)
			s.buf = append(s.buf, '-')
			s.buf = strconv.AppendInt(s.buf, int64(s.i), 10)
			s.buf = append(s.buf, '"')
			if l[1] != '}' {
				s.buf = append(s.buf, ',')
			}
			s.buf = append(s.buf, l[1:]...)
		} else {
			s.buf = append(s.buf, l...)
		}
		s.buf = append(s.buf, '\n')
		s.n--
		s.i++
		if s.i == len(s.c.lines) {
			s.i, s.copy = 0, s.copy+1
		}
	}
}
