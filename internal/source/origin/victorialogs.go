package origin

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/loupe-sec/loupe/internal/event"
	"github.com/loupe-sec/loupe/internal/source"
	"github.com/tidwall/gjson"
)

// VictoriaLogs answers /select/logsql/query with one JSON object per line,
// every value a string: _time, _msg, _stream, _stream_id and the other
// fields of the row (nested JSON fields flattened with dots). The response
// is read as it arrives, one row at a time.

// vlogsSorted matches a query that orders its results itself.
var vlogsSorted = regexp.MustCompile(`\|\s*(sort|order|first|last)\b`)

// vlogsMissingMsg starts the _msg VictoriaLogs stores for a row ingested
// without a message field.
const vlogsMissingMsg = "missing _msg field"

// vlogsQuery returns the LogsQL sent for s: its query ("*" when empty),
// sorted by _time unless it sorts itself, because detections correlate in
// time order.
func vlogsQuery(s *Spec) string {
	q := strings.TrimSpace(s.Query)
	if q == "" {
		q = "*"
	}
	if !vlogsSorted.MatchString(q) {
		q += " | sort by (_time)"
	}
	return q
}

func openVictoriaLogs(ctx context.Context, s Spec, o *options) (iter.Seq2[*event.Event, error], error) {
	form := url.Values{}
	form.Set("query", vlogsQuery(&s))
	if !s.Start.IsZero() {
		form.Set("start", s.Start.UTC().Format(time.RFC3339Nano))
	}
	if !s.End.IsZero() {
		// The end arg is exclusive, like a Spec's End (the tests check the
		// boundary against the real server).
		form.Set("end", s.End.UTC().Format(time.RFC3339Nano))
	}
	return func(yield func(*event.Event, error) bool) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, joinURL(s.URL, "/select/logsql/query"), strings.NewReader(form.Encode()))
		if err != nil {
			yield(nil, fmt.Errorf("victorialogs query: %w", err))
			return
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := send(o, &s, req, "query")
		if err != nil {
			yield(nil, err)
			return
		}
		defer resp.Body.Close()
		rr := recordReader{maxLine: s.maxLine()}
		var row vlogsRow
		lr := lineReader{r: bufio.NewReaderSize(resp.Body, 64<<10), max: s.maxLine()}
		for {
			if rr.n%1024 == 0 {
				if err := ctx.Err(); err != nil {
					yield(nil, err)
					return
				}
			}
			line, err := lr.next()
			if err == io.EOF {
				return
			}
			if errors.Is(err, errLineTooLong) {
				rr.n++
				if !yield(nil, &source.LineError{Line: rr.n, Err: fmt.Errorf("victorialogs row: %w", err)}) {
					return
				}
				continue
			}
			if err != nil {
				if ctxErr := ctx.Err(); ctxErr != nil {
					err = ctxErr
				}
				yield(nil, fmt.Errorf("victorialogs query: reading rows: %w", err))
				return
			}
			if isBlank(line) {
				continue
			}
			if err := row.decode(line); err != nil {
				rr.n++
				if !yield(nil, &source.LineError{Line: rr.n, Err: err}) {
					return
				}
				continue
			}
			if !yield(row.event(&rr)) {
				return
			}
		}
	}, nil
}

// vlogsRow is one decoded result row, reused between rows.
type vlogsRow struct {
	ts     int64
	msg    string
	stream string
	fields []field
}

var errVLogsRow = errors.New("victorialogs row")

// decode reads one result row: a JSON object of string values.
func (r *vlogsRow) decode(line []byte) error {
	r.ts, r.msg, r.stream, r.fields = 0, "", "", r.fields[:0]
	if !gjson.ValidBytes(line) {
		return fmt.Errorf("%w: not JSON: %q", errVLogsRow, excerpt(line))
	}
	obj := gjson.ParseBytes(line)
	if !obj.IsObject() {
		return fmt.Errorf("%w: not a JSON object: %q", errVLogsRow, excerpt(line))
	}
	var err error
	obj.ForEach(func(k, v gjson.Result) bool {
		val := v.Str
		if v.Type != gjson.String {
			val = v.Raw
		}
		switch k.Str {
		case "_time":
			t, perr := time.Parse(time.RFC3339Nano, val)
			if perr != nil {
				err = fmt.Errorf("%w: _time %q: %w", errVLogsRow, excerpt([]byte(val)), perr)
				return false
			}
			r.ts = t.UnixNano()
		case "_msg":
			if !strings.HasPrefix(val, vlogsMissingMsg) {
				r.msg = val
			}
		case "_stream":
			r.stream = val
		case "_stream_id":
		default:
			r.fields = append(r.fields, field{k.Str, val})
		}
		return true
	})
	return err
}

// event parses the row: its _msg as it is when that is a JSON object (the
// original record was stored whole), otherwise the row rebuilt as one
// record. The stream (labels) and time seed derived ids.
func (r *vlogsRow) event(rr *recordReader) (*event.Event, error) {
	name := "victorialogs" + r.stream
	if jsonObject(readOnly(r.msg)) {
		return rr.line(readOnly(r.msg), name, r.ts)
	}
	return rr.record(r.fields, r.msg, name, r.ts)
}

func isBlank(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return false
		}
	}
	return true
}
