package logstore

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"
)

// VictoriaLogs queries a VictoriaLogs server through its LogsQL HTTP API.
//
// SIB's STACK=vm points falcosidekick's Loki output at VictoriaLogs'
// /insert/loki/api/v1/push, so the Loki labels arrive as the fields
// hostname, rule, priority, source and tags, and the Falco output text as
// _msg. A JSON line (a Falco JSON alert) is split by VictoriaLogs into fields
// such as output_fields.container.id.
type VictoriaLogs struct {
	URL              string       // base URL, e.g. http://sib-victorialogs:9428
	Client           *http.Client // nil = http.DefaultClient
	MaxResponseBytes int64        // 0 = DefaultMaxResponseBytes
	MaxLineBytes     int          // longest accepted result row; 0 = 1 MiB
}

const vlogsBackend = "victorialogs"

// Fields that may hold a Falco container id in VictoriaLogs, besides _msg.
var vlogsContainerFields = []string{"output_fields.container.id", "container.id", "containerid", "container_id"}

// Ready asks VictoriaLogs' /health endpoint.
func (v *VictoriaLogs) Ready(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, joinURL(v.URL, "/health"), nil)
	if err != nil {
		return fmt.Errorf("logstore: victorialogs health: %w", err)
	}
	_, err = do(v.Client, req, vlogsBackend, "health", 4096, http.StatusOK)
	return err
}

// LogsQL builds the LogsQL query for q: a _time range filter, exact-match
// filters on hostname and rule, and for the container either an exact match
// on a container id field or the id as a phrase in _msg (Falco output text
// has container_id=ID). Every value and field name is a quoted LogsQL string.
func (q Query) LogsQL(start, end time.Time) string {
	var b strings.Builder
	b.WriteString("_time:[")
	b.WriteString(start.UTC().Format(time.RFC3339Nano))
	b.WriteString(", ")
	b.WriteString(end.UTC().Format(time.RFC3339Nano))
	b.WriteString("]")
	exact := func(field, value string) {
		b.WriteString(strconv.Quote(field))
		b.WriteString(":=")
		b.WriteString(strconv.Quote(value))
	}
	if q.Host != "" {
		b.WriteByte(' ')
		exact("hostname", q.Host)
	}
	if q.Rule != "" {
		b.WriteByte(' ')
		exact("rule", q.Rule)
	}
	if q.ContainerID != "" {
		b.WriteString(" (")
		for _, f := range vlogsContainerFields {
			exact(f, q.ContainerID)
			b.WriteString(" OR ")
		}
		b.WriteString("_msg:")
		b.WriteString(strconv.Quote(q.ContainerID))
		b.WriteByte(')')
	}
	return b.String()
}

// Related runs q against /select/logsql/query. VictoriaLogs returns the most
// recent q.Limit matching rows; Related returns them oldest first.
func (v *VictoriaLogs) Related(ctx context.Context, q Query) ([]Event, error) {
	start, end, limit, err := q.window()
	if err != nil {
		return nil, err
	}
	form := url.Values{}
	form.Set("query", q.LogsQL(start, end))
	form.Set("limit", strconv.Itoa(limit))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, joinURL(v.URL, "/select/logsql/query"), strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("logstore: victorialogs query: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	hc := v.Client
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("logstore: victorialogs query: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, &HTTPError{Backend: vlogsBackend, Op: "query", Status: resp.StatusCode, Body: excerpt(b)}
	}
	maxBytes := v.MaxResponseBytes
	if maxBytes <= 0 {
		maxBytes = DefaultMaxResponseBytes
	}
	out, err := v.readRows(&boundedReader{r: resp.Body, left: maxBytes}, limit, q)
	if err != nil {
		return nil, fmt.Errorf("logstore: victorialogs query: %w", err)
	}
	sortEvents(out)
	return out, nil
}

var errTooLarge = errors.New("response too large")

// readRows decodes the NDJSON result stream row by row.
func (v *VictoriaLogs) readRows(r io.Reader, limit int, q Query) ([]Event, error) {
	maxLine := v.MaxLineBytes
	if maxLine <= 0 {
		maxLine = 1 << 20
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, min(64<<10, maxLine)), maxLine)
	var out []Event
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		ev, err := parseVLogsRow(line)
		if err != nil {
			return nil, err
		}
		if q.keep(&ev) && len(out) < limit {
			out = append(out, ev)
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, errTooLarge) {
			return nil, err
		}
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("%w: a row is over %d bytes", errTooLarge, maxLine)
		}
		return nil, fmt.Errorf("reading rows: %w", err)
	}
	return out, nil
}

// boundedReader fails with errTooLarge once more than left bytes are read.
type boundedReader struct {
	r    io.Reader
	left int64
}

func (b *boundedReader) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, errTooLarge
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return n, fmt.Errorf("%w: over the response limit", errTooLarge)
	}
	return n, err
}

// vlogsMissingMsg starts the _msg VictoriaLogs stores for a row that had no
// message field (e.g. a JSON line whose text is in "output").
const vlogsMissingMsg = "missing _msg field"

// parseVLogsRow decodes one result row: a flat JSON object of string fields.
func parseVLogsRow(line []byte) (Event, error) {
	if !gjson.ValidBytes(line) {
		return Event{}, fmt.Errorf("row %q is not JSON", excerpt(line))
	}
	r := gjson.ParseBytes(line)
	if !r.IsObject() {
		return Event{}, fmt.Errorf("row %q is not a JSON object", excerpt(line))
	}
	// VictoriaLogs returns every value as a string; anything else is kept
	// as its JSON text.
	fields := make(map[string]string, 16)
	r.ForEach(func(k, v gjson.Result) bool {
		if v.Type == gjson.String {
			fields[k.String()] = v.Str
		} else {
			fields[k.String()] = v.Raw
		}
		return true
	})
	var ev Event
	if t, ok := fields["_time"]; ok {
		tt, err := time.Parse(time.RFC3339Nano, t)
		if err != nil {
			return Event{}, fmt.Errorf("row _time: %w", err)
		}
		ev.Time = tt
	}
	ev.Host = fields["hostname"]
	ev.Rule = fields["rule"]
	ev.Priority = fields["priority"]
	ev.Message = fields["_msg"]
	if out, ok := fields["output"]; ok && (ev.Message == "" || strings.HasPrefix(ev.Message, vlogsMissingMsg)) {
		ev.Message = out
	}
	ev.ContainerID = firstLabel(fields, vlogsContainerFields...)
	if ev.ContainerID == "" {
		ev.ContainerID = containerIDFromText(ev.Message)
	}
	delete(fields, "_time")
	delete(fields, "_msg")
	delete(fields, "_stream_id")
	ev.Labels = fields
	ev.Raw = json.RawMessage(append([]byte(nil), line...))
	return ev, nil
}

// Push writes events through /insert/jsonline. Each row has _time, _msg
// (ev.Message), the fields SIB's Loki ingestion would create (hostname,
// rule, priority, plus ev.Labels such as source and tags) and, when ev.Raw
// is a JSON object, its other fields (nested objects such as output_fields
// are flattened by VictoriaLogs into output_fields.container.id etc.).
// Stream fields are hostname, source, rule, priority and tags: the labels
// falcosidekick sets, which SIB's Loki ingestion makes stream fields.
func (v *VictoriaLogs) Push(ctx context.Context, events []Event) error {
	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	for i := range events {
		ev := &events[i]
		if ev.Time.IsZero() {
			return fmt.Errorf("logstore: victorialogs push: event %d has no time", i)
		}
		row := map[string]any{}
		if len(ev.Raw) > 0 {
			// A non-object Raw is simply not merged.
			_ = json.Unmarshal(ev.Raw, &row)
			delete(row, "output") // becomes _msg
			delete(row, "time")   // becomes _time
		}
		for k, val := range ev.Labels {
			row[k] = val
		}
		for k, val := range map[string]string{"hostname": ev.Host, "rule": ev.Rule, "priority": ev.Priority} {
			if val != "" {
				row[k] = val
			}
		}
		row["_time"] = ev.Time.UTC().Format(time.RFC3339Nano)
		row["_msg"] = ev.Message
		if err := enc.Encode(row); err != nil {
			return fmt.Errorf("logstore: victorialogs push: event %d: %w", i, err)
		}
	}
	params := url.Values{}
	params.Set("_stream_fields", "hostname,source,rule,priority,tags")
	params.Set("_time_field", "_time")
	params.Set("_msg_field", "_msg")
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, joinURL(v.URL, "/insert/jsonline")+"?"+params.Encode(), &body)
	if err != nil {
		return fmt.Errorf("logstore: victorialogs push: %w", err)
	}
	req.Header.Set("Content-Type", "application/stream+json")
	_, err = do(v.Client, req, vlogsBackend, "push", 4096, http.StatusOK, http.StatusNoContent)
	return err
}
