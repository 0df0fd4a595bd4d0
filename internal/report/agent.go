package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/loupe-sec/loupe/internal/finding"
)

// Form is the shape of a Timesketch log reasoning agent response.
type Form int

const (
	// FormLines writes one NDJSON line per evidence event, each with
	// record_id and annotations (the original agent contract).
	FormLines Form = iota
	// FormSummaries writes one JSON object {"summaries": [...]} whose
	// elements each link log_records to annotations (the LogAnalyzer
	// feature, which keeps the last object with a "summaries" key). The
	// array is streamed element by element.
	FormSummaries
)

func (f Form) String() string {
	if f == FormSummaries {
		return "summaries"
	}
	return "lines"
}

// ParseForm reads a form name: "lines" (or "") and "summaries".
func ParseForm(s string) (Form, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "lines", "line", "ndjson":
		return FormLines, nil
	case "summaries", "summary":
		return FormSummaries, nil
	}
	return FormLines, fmt.Errorf("unknown agent form %q (want lines or summaries)", s)
}

// ErrClosed is returned by AgentWriter methods called after Close.
var ErrClosed = errors.New("report: agent writer closed")

// AgentWriter writes findings in a Timesketch agent form. Every method
// writes complete output with a single Write to the underlying writer and
// keeps nothing back, so the caller may flush after each call. Use it from
// one goroutine at a time.
type AgentWriter struct {
	w      io.Writer
	form   Form
	buf    bytes.Buffer
	enc    *json.Encoder
	opened bool // summaries form: `{"summaries":[` written
	items  int  // summaries form: array elements written
	closed bool
}

// NewAgentWriter returns a writer of form to w. Nothing is written until
// the first call.
func NewAgentWriter(w io.Writer, form Form) *AgentWriter {
	a := &AgentWriter{w: w, form: form}
	a.enc = json.NewEncoder(&a.buf)
	a.enc.SetEscapeHTML(false)
	return a
}

type annotation struct {
	Question    string   `json:"investigative_question"`
	Conclusions []string `json:"conclusions"`
	Priority    string   `json:"priority"`
	AttackStage string   `json:"attack_stage,omitempty"`
}

type ruleRef struct {
	ID     string `json:"id"`
	Title  string `json:"title"`
	Author string `json:"author"`
	Link   string `json:"link"`
}

type loupeMeta struct {
	FindingID  string              `json:"finding_id"`
	Rule       ruleRef             `json:"rule"`
	Techniques []finding.Technique `json:"techniques"`
	Priority   string              `json:"priority"`
	Count      int64               `json:"count"`
	Source     string              `json:"source"`
	LLM        *finding.LLM        `json:"llm,omitempty"` // the model's part, or why it is missing
}

type agentLine struct {
	RecordID    string        `json:"record_id"`
	Index       string        `json:"_index,omitempty"`
	TSIndex     string        `json:"__ts_index_name,omitempty"`
	Annotations [1]annotation `json:"annotations"`
	Loupe       *loupeMeta    `json:"loupe"`
}

type logRecord struct {
	RecordID string `json:"record_id"`
}

type agentSummary struct {
	LogRecords  []logRecord   `json:"log_records"`
	Annotations [1]annotation `json:"annotations"`
	Loupe       *loupeMeta    `json:"loupe"`
}

type agentError struct {
	Error      string       `json:"error"`
	LogRecords *[]logRecord `json:"log_records,omitempty"`
}

func annotate(f *finding.Finding, form Form) [1]annotation {
	p := f.Priority.Timesketch()
	if form == FormSummaries {
		p = summariesPriority(f.Priority)
	}
	conclusions := []string{f.Conclusion}
	if f.LLM != nil && f.LLM.Note != "" && f.Source != "llm" {
		// An offline finding a model confirmed: its words come second.
		conclusions = append(conclusions, "Model ("+f.LLM.Provider+" "+f.LLM.Model+"): "+f.LLM.Note)
	}
	return [1]annotation{{
		Question:    f.Question,
		Conclusions: conclusions,
		Priority:    p,
		AttackStage: f.Tactic,
	}}
}

// summariesPriority speaks the vocabulary of Timesketch's newer LogAnalyzer
// feature, which labels a question only for "notice" (→ low) and
// "critical" (→ high) and accepts "medium" without a label.
func summariesPriority(p finding.Priority) string {
	switch {
	case p >= finding.High:
		return "critical"
	case p == finding.Medium:
		return "medium"
	}
	return "notice"
}

func meta(f *finding.Finding) *loupeMeta {
	techs := f.Techniques
	if techs == nil {
		techs = []finding.Technique{}
	}
	return &loupeMeta{
		FindingID:  f.ID,
		Rule:       ruleRef{ID: f.Rule.ID, Title: f.Rule.Title, Author: f.Rule.Author, Link: f.Rule.Link},
		Techniques: techs,
		Priority:   f.Priority.String(),
		Count:      f.Count,
		Source:     f.Source,
		LLM:        f.LLM,
	}
}

// WriteFinding writes one finding: in the lines form one line per evidence
// event, in the summaries form one array element linking all its events.
// A finding without record ids writes nothing: Timesketch could not attach
// it to any event.
func (a *AgentWriter) WriteFinding(f *finding.Finding) error {
	if a.closed {
		return ErrClosed
	}
	a.buf.Reset()
	ann, m := annotate(f, a.form), meta(f)
	switch a.form {
	case FormSummaries:
		s := agentSummary{Annotations: ann, Loupe: m}
		for _, e := range f.Evidence {
			if e.RecordID != "" {
				s.LogRecords = append(s.LogRecords, logRecord{RecordID: e.RecordID})
			}
		}
		if len(s.LogRecords) == 0 {
			return nil
		}
		a.element()
		if err := a.enc.Encode(&s); err != nil {
			return fmt.Errorf("encode finding %s: %w", f.ID, err)
		}
	default:
		for _, e := range f.Evidence {
			if e.RecordID == "" {
				continue
			}
			l := agentLine{RecordID: e.RecordID, Index: e.Index, TSIndex: e.Index, Annotations: ann, Loupe: m}
			if err := a.enc.Encode(&l); err != nil {
				return fmt.Errorf("encode finding %s: %w", f.ID, err)
			}
		}
	}
	return a.flush()
}

// WriteError reports a problem, such as a bad input line, in the stream.
func (a *AgentWriter) WriteError(msg string) error {
	if a.closed {
		return ErrClosed
	}
	a.buf.Reset()
	e := agentError{Error: msg}
	if a.form == FormSummaries {
		e.LogRecords = &[]logRecord{}
		a.element()
	}
	if err := a.enc.Encode(&e); err != nil {
		return fmt.Errorf("encode error line: %w", err)
	}
	return a.flush()
}

// Keepalive writes a bare newline, which both forms allow between values,
// so idle connections stay open during long analyses.
func (a *AgentWriter) Keepalive() error {
	if a.closed {
		return ErrClosed
	}
	a.buf.Reset()
	a.open()
	a.buf.WriteByte('\n')
	return a.flush()
}

// Close ends the stream (the summaries form closes its array and object).
// It does not close the underlying writer.
func (a *AgentWriter) Close() error {
	if a.closed {
		return nil
	}
	a.buf.Reset()
	if a.form == FormSummaries {
		a.open()
		a.buf.WriteString("]}\n")
	}
	a.closed = true
	return a.flush()
}

// open starts the summaries object; it must be the first byte of the
// response because the reader decodes from the start without skipping
// whitespace.
func (a *AgentWriter) open() {
	if a.form == FormSummaries && !a.opened {
		a.buf.WriteString(`{"summaries":[`)
		a.opened = true
	}
}

// element starts a summaries array element.
func (a *AgentWriter) element() {
	a.open()
	if a.items > 0 {
		a.buf.WriteByte(',')
	}
	a.items++
}

func (a *AgentWriter) flush() error {
	if a.buf.Len() == 0 {
		return nil
	}
	if _, err := a.w.Write(a.buf.Bytes()); err != nil {
		return fmt.Errorf("write agent response: %w", err)
	}
	return nil
}
