package origin

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// MaxResponseBytes bounds one buffered response (a Loki page, an
// opensearch page); streamed responses are bounded per record instead.
const MaxResponseBytes = 256 << 20

// StatusError is a log store's answer with an unexpected HTTP status.
type StatusError struct {
	Kind   string // origin kind
	Op     string // what was asked, e.g. "query_range"
	Status int
	Body   string // the start of the response body, on one line
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s %s: HTTP %d: %s", e.Kind, e.Op, e.Status, e.Body)
}

// send performs req with the Spec's credentials and returns the response
// when its status is 200; any other status is a *StatusError.
func send(o *options, s *Spec, req *http.Request, op string) (*http.Response, error) {
	if s.Username != "" {
		req.SetBasicAuth(s.Username, s.Password)
	}
	resp, err := o.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", s.Kind, op, err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		resp.Body.Close()
		return nil, &StatusError{Kind: s.Kind, Op: op, Status: resp.StatusCode, Body: excerpt(b)}
	}
	return resp, nil
}

// readBody reads a whole response body of at most max bytes.
func readBody(r io.Reader, max int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("response larger than %d bytes", max)
	}
	return b, nil
}

// excerpt returns the first 300 bytes of b on one line.
func excerpt(b []byte) string {
	s := strings.Join(strings.Fields(strings.ToValidUTF8(string(b), "\uFFFD")), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

func joinURL(base, path string) string { return strings.TrimRight(base, "/") + path }

// lineReader reads newline-terminated lines of at most max bytes from a
// stream; a longer line is skipped and reported, and reading goes on.
type lineReader struct {
	r    *bufio.Reader
	max  int
	long []byte
}

var errLineTooLong = errors.New("line too long")

// next returns the next line without its newline (valid until the next
// call), errLineTooLong for a skipped line, or io.EOF.
func (l *lineReader) next() ([]byte, error) {
	l.long = l.long[:0]
	tooLong := false
	for {
		chunk, err := l.r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			if !tooLong {
				if len(l.long)+len(chunk) > l.max {
					tooLong = true
					l.long = l.long[:0]
				} else {
					l.long = append(l.long, chunk...)
				}
			}
			continue
		}
		if err != nil && err != io.EOF {
			return nil, err
		}
		if err == io.EOF && len(chunk) == 0 && len(l.long) == 0 && !tooLong {
			return nil, io.EOF
		}
		line := chunk
		if len(l.long) > 0 {
			l.long = append(l.long, chunk...)
			line = l.long
		}
		line = bytes.TrimRight(line, "\r\n")
		if tooLong || len(line) > l.max {
			return nil, fmt.Errorf("%w: over %d bytes", errLineTooLong, l.max)
		}
		return line, nil
	}
}
