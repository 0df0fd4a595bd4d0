package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/loupe-sec/loupe/internal/finding"
)

// Provenance names the language model that wrote a conclusion. It is zero
// for findings of deterministic rules.
type Provenance struct {
	Provider      string // e.g. "openai", "anthropic", "ollama"
	Model         string
	PromptVersion string
}

// Stored is a finding as read back from the store.
type Stored struct {
	*finding.Finding
	Provenance Provenance
}

// Filter narrows a findings listing; zero fields do not filter. All given
// fields must match.
type Filter struct {
	Tactic   string           // tactic name or id (TA0003), exact
	Priority finding.Priority // minimum priority
	RuleID   string           // exact
	Host     string           // exact
	From, To time.Time        // the finding's [First, Last] overlaps [From, To]
	Text     string           // substring of question, conclusion or rule title; ASCII letters match either case
}

const findingColumns = `id, tactic, tactic_id, techniques, question, conclusion, priority,
    rule_id, rule_title, rule_author, rule_link, rule_level, source, host, user_name,
    first_time, last_time, event_count, provider, model, prompt_version, llm`

// AddFindings stores findings of an investigation, all in one transaction.
// Storing a finding id again replaces that finding: a later summary of the
// same conclusion updates its count, times and evidence. Adding the same
// batch twice leaves the store as adding it once.
func (s *Store) AddFindings(ctx context.Context, investigationID string, fs []*finding.Finding) error {
	return s.AddFindingsBy(ctx, investigationID, Provenance{}, fs)
}

// AddFindingsBy is AddFindings for findings whose conclusions a language
// model wrote: p is recorded with each of them.
func (s *Store) AddFindingsBy(ctx context.Context, investigationID string, p Provenance, fs []*finding.Finding) (err error) {
	if len(fs) == 0 {
		return nil
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("store: add %d findings to investigation %s: %w", len(fs), investigationID, err)
		}
	}()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := s.writeFindings(ctx, tx, investigationID, p, fs); err != nil {
		return err
	}
	return tx.Commit()
}

// writeFindings upserts fs and their evidence inside tx.
func (s *Store) writeFindings(ctx context.Context, tx *sql.Tx, investigationID string, p Provenance, fs []*finding.Finding) (err error) {
	upsert, err := tx.PrepareContext(ctx, s.rebind(`INSERT INTO findings (investigation_id, `+findingColumns+`)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (investigation_id, id) DO UPDATE SET
        tactic = excluded.tactic, tactic_id = excluded.tactic_id, techniques = excluded.techniques,
        question = excluded.question, conclusion = excluded.conclusion, priority = excluded.priority,
        rule_id = excluded.rule_id, rule_title = excluded.rule_title, rule_author = excluded.rule_author,
        rule_link = excluded.rule_link, rule_level = excluded.rule_level, source = excluded.source,
        host = excluded.host, user_name = excluded.user_name, first_time = excluded.first_time,
        last_time = excluded.last_time, event_count = excluded.event_count, provider = excluded.provider,
        model = excluded.model, prompt_version = excluded.prompt_version, llm = excluded.llm`))
	if err != nil {
		return err
	}
	defer upsert.Close()
	clear, err := tx.PrepareContext(ctx, s.rebind(`DELETE FROM evidence WHERE investigation_id = ? AND finding_id = ?`))
	if err != nil {
		return err
	}
	defer clear.Close()
	link, err := tx.PrepareContext(ctx, s.rebind(`INSERT INTO evidence
    (investigation_id, finding_id, seq, record_id, index_name, line, event_time, host, user_name, summary)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`))
	if err != nil {
		return err
	}
	defer link.Close()

	for _, f := range fs {
		if f == nil {
			continue
		}
		if f.ID == "" {
			return fmt.Errorf("finding without id (question %q)", f.Question)
		}
		techniques := []byte("[]")
		if len(f.Techniques) > 0 {
			if techniques, err = json.Marshal(f.Techniques); err != nil {
				return fmt.Errorf("finding %s: techniques: %w", f.ID, err)
			}
		}
		fp := p
		if fp == (Provenance{}) && f.Source == "llm" && f.LLM != nil {
			// A conclusion the LLM reasoning stage wrote names its model itself.
			fp = Provenance{Provider: f.LLM.Provider, Model: f.LLM.Model, PromptVersion: f.LLM.PromptVersion}
		}
		var llm sql.NullString
		if f.LLM != nil {
			b, err := json.Marshal(f.LLM)
			if err != nil {
				return fmt.Errorf("finding %s: llm: %w", f.ID, err)
			}
			llm = sql.NullString{String: string(b), Valid: true}
		}
		if _, err := upsert.ExecContext(ctx, investigationID, f.ID, f.Tactic, f.TacticID, string(techniques),
			f.Question, f.Conclusion, int(f.Priority), f.Rule.ID, f.Rule.Title, f.Rule.Author, f.Rule.Link,
			f.Rule.Level, f.Source, f.Host, f.User, toNanos(f.First), toNanos(f.Last), f.Count,
			nullString(fp.Provider), nullString(fp.Model), nullString(fp.PromptVersion), llm); err != nil {
			return fmt.Errorf("finding %s: %w", f.ID, err)
		}
		if _, err := clear.ExecContext(ctx, investigationID, f.ID); err != nil {
			return fmt.Errorf("finding %s: evidence: %w", f.ID, err)
		}
		for i, e := range f.Evidence {
			if _, err := link.ExecContext(ctx, investigationID, f.ID, i, e.RecordID, e.Index, e.Line,
				toNanos(e.Time), e.Host, e.User, e.Summary); err != nil {
				return fmt.Errorf("finding %s: evidence %d: %w", f.ID, i, err)
			}
		}
	}
	return nil
}

// Findings lists the findings of an investigation that pass the filter,
// most urgent first (priority, then earliest first time, then id), with
// their evidence, and returns the cursor of the next page ("" after the
// last). Pages are keyset-paginated: findings stored while paging are
// neither repeated nor shift the pages.
func (s *Store) Findings(ctx context.Context, investigationID string, f Filter, page Page) ([]*Stored, string, error) {
	var (
		where strings.Builder
		args  = []any{investigationID}
	)
	where.WriteString("investigation_id = ?")
	if f.Tactic != "" {
		where.WriteString(" AND (tactic = ? OR tactic_id = ?)")
		args = append(args, f.Tactic, f.Tactic)
	}
	if f.Priority > finding.Info {
		where.WriteString(" AND priority >= ?")
		args = append(args, int(f.Priority))
	}
	if f.RuleID != "" {
		where.WriteString(" AND rule_id = ?")
		args = append(args, f.RuleID)
	}
	if f.Host != "" {
		where.WriteString(" AND host = ?")
		args = append(args, f.Host)
	}
	if !f.From.IsZero() {
		where.WriteString(" AND last_time >= ?")
		args = append(args, toNanos(f.From))
	}
	if !f.To.IsZero() {
		where.WriteString(" AND first_time <= ? AND first_time <> 0")
		args = append(args, toNanos(f.To))
	}
	if f.Text != "" {
		pat := "%" + likeEscaper.Replace(strings.ToLower(f.Text)) + "%"
		where.WriteString(` AND (LOWER(question) LIKE ? ESCAPE '\' OR LOWER(conclusion) LIKE ? ESCAPE '\' OR LOWER(rule_title) LIKE ? ESCAPE '\')`)
		args = append(args, pat, pat, pat)
	}
	limit := page.limit()
	lim := " LIMIT " + strconv.Itoa(limit+1)
	const orderBy = " ORDER BY priority DESC, first_time, id"
	q := "SELECT " + findingColumns + " FROM findings WHERE " + where.String() + orderBy + lim
	if page.Cursor != "" {
		prio, first, id, err := decodeFindingCursor(page.Cursor)
		if err != nil {
			return nil, "", err
		}
		// After the cursor in priority DESC, first_time, id order: the rest
		// of the cursor's priority, then the lower priorities. Two ranges
		// that each walk an index, instead of one OR that scans the
		// cursor's whole priority.
		base := "SELECT " + findingColumns + " FROM findings WHERE " + where.String()
		q = "SELECT * FROM (" + base + " AND priority = ? AND (first_time, id) > (?, ?) ORDER BY first_time, id" + lim + ") AS tie" +
			" UNION ALL SELECT * FROM (" + base + " AND priority < ?" + orderBy + lim + ") AS rest" + orderBy + lim
		filterArgs := slices.Clone(args)
		args = append(args, prio, first, id)
		args = append(args, filterArgs...)
		args = append(args, prio)
	}
	out, err := s.queryFindings(ctx, q, args)
	if err != nil {
		return nil, "", fmt.Errorf("store: findings of investigation %s: %w", investigationID, err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		last := out[limit-1]
		next = encodeCursor(strconv.Itoa(int(last.Priority)), strconv.FormatInt(toNanos(last.First), 10), last.ID)
	}
	if err := s.loadEvidence(ctx, investigationID, out); err != nil {
		return nil, "", fmt.Errorf("store: evidence of investigation %s: %w", investigationID, err)
	}
	return out, next, nil
}

var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

func decodeFindingCursor(c string) (prio int, first int64, id string, err error) {
	parts, err := decodeCursor(c, 3)
	if err != nil {
		return 0, 0, "", err
	}
	prio, err1 := strconv.Atoi(parts[0])
	first, err2 := strconv.ParseInt(parts[1], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, "", ErrBadCursor
	}
	return prio, first, parts[2], nil
}

func (s *Store) queryFindings(ctx context.Context, q string, args []any) ([]*Stored, error) {
	rows, err := s.db.QueryContext(ctx, s.rebind(q), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Stored
	for rows.Next() {
		var (
			f                       finding.Finding
			techniques              string
			prio                    int
			first, last             int64
			provider, model, prompt sql.NullString
			llm                     sql.NullString
		)
		if err := rows.Scan(&f.ID, &f.Tactic, &f.TacticID, &techniques, &f.Question, &f.Conclusion, &prio,
			&f.Rule.ID, &f.Rule.Title, &f.Rule.Author, &f.Rule.Link, &f.Rule.Level, &f.Source, &f.Host, &f.User,
			&first, &last, &f.Count, &provider, &model, &prompt, &llm); err != nil {
			return nil, err
		}
		if techniques != "" && techniques != "[]" {
			if err := json.Unmarshal([]byte(techniques), &f.Techniques); err != nil {
				return nil, fmt.Errorf("finding %s: techniques: %w", f.ID, err)
			}
		}
		f.Priority = finding.Priority(prio)
		f.First, f.Last = fromNanos(first), fromNanos(last)
		switch {
		case llm.Valid:
			f.LLM = new(finding.LLM)
			if err := json.Unmarshal([]byte(llm.String), f.LLM); err != nil {
				return nil, fmt.Errorf("finding %s: llm: %w", f.ID, err)
			}
		case provider.String != "": // written before the llm column
			f.LLM = &finding.LLM{Provider: provider.String, Model: model.String, PromptVersion: prompt.String}
		}
		out = append(out, &Stored{Finding: &f, Provenance: Provenance{
			Provider: provider.String, Model: model.String, PromptVersion: prompt.String}})
	}
	return out, rows.Err()
}

// loadEvidence fills in the evidence of fs with one query.
func (s *Store) loadEvidence(ctx context.Context, investigationID string, fs []*Stored) error {
	if len(fs) == 0 {
		return nil
	}
	byID := make(map[string]*finding.Finding, len(fs))
	args := make([]any, 0, len(fs)+1)
	args = append(args, investigationID)
	for _, f := range fs {
		byID[f.ID] = f.Finding
		args = append(args, f.ID)
	}
	q := `SELECT finding_id, record_id, index_name, line, event_time, host, user_name, summary
    FROM evidence WHERE investigation_id = ? AND finding_id IN (?` + strings.Repeat(", ?", len(fs)-1) + `)
    ORDER BY finding_id, seq`
	rows, err := s.db.QueryContext(ctx, s.rebind(q), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id string
			e  finding.Evidence
			t  int64
		)
		if err := rows.Scan(&id, &e.RecordID, &e.Index, &e.Line, &t, &e.Host, &e.User, &e.Summary); err != nil {
			return err
		}
		e.Time = fromNanos(t)
		if f := byID[id]; f != nil {
			f.Evidence = append(f.Evidence, e)
		}
	}
	return rows.Err()
}

// CountByTactic counts the findings of an investigation per tactic name.
func (s *Store) CountByTactic(ctx context.Context, investigationID string) (map[string]int64, error) {
	out := map[string]int64{}
	err := s.count(ctx, "tactic", investigationID, func(k string, n int64) { out[k] = n })
	if err != nil {
		return nil, fmt.Errorf("store: count findings by tactic: %w", err)
	}
	return out, nil
}

// CountByPriority counts the findings of an investigation per priority.
func (s *Store) CountByPriority(ctx context.Context, investigationID string) (map[finding.Priority]int64, error) {
	out := map[finding.Priority]int64{}
	err := s.count(ctx, "priority", investigationID, func(k string, n int64) {
		p, _ := strconv.Atoi(k)
		out[finding.Priority(p)] = n
	})
	if err != nil {
		return nil, fmt.Errorf("store: count findings by priority: %w", err)
	}
	return out, nil
}

// count groups the findings of an investigation by column (a constant).
func (s *Store) count(ctx context.Context, column, investigationID string, add func(string, int64)) error {
	rows, err := s.db.QueryContext(ctx, s.rebind(
		"SELECT "+column+", COUNT(*) FROM findings WHERE investigation_id = ? GROUP BY "+column), investigationID)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			k any
			n int64
		)
		if err := rows.Scan(&k, &n); err != nil {
			return err
		}
		add(fmt.Sprint(k), n)
	}
	return rows.Err()
}
