package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Status is where an investigation is in its life.
type Status string

const (
	Queued    Status = "queued"
	Running   Status = "running"
	Done      Status = "done"
	Failed    Status = "failed"
	Cancelled Status = "cancelled"
)

// Valid reports whether s is one of the known statuses.
func (s Status) Valid() bool {
	switch s {
	case Queued, Running, Done, Failed, Cancelled:
		return true
	}
	return false
}

// Final reports whether s ends an investigation.
func (s Status) Final() bool { return s == Done || s == Failed || s == Cancelled }

// Source says where an investigation reads its events: a kind ("file",
// "loki", "victorialogs", …) and kind-specific parameters. Parameters are
// stored as given: keep secrets out of them.
type Source struct {
	Kind   string          `json:"kind"`
	Params json.RawMessage `json:"params,omitempty"`
}

// Investigation is one analysis run and its progress.
type Investigation struct {
	ID       string // empty on create: one is generated
	Name     string
	Source   Source
	From, To time.Time       // time range analysed; zero = open
	Options  json.RawMessage // analysis options as JSON; nil = {}
	Status   Status          // empty on create: Queued
	Error    string          // why it failed
	Events   int64           // events read so far
	Findings int64           // findings stored so far
	Created  time.Time       // set by the store
	Updated  time.Time       // set by the store; a job's owner keeps it fresh
	Owner    string          // the process running it (a job manager's id); "" = none recorded
}

// Page asks for one page of a listing: at most Limit rows (0 = 100, at most
// 1000) after Cursor, the Next value of the previous page ("" = first page).
type Page struct {
	Limit  int
	Cursor string
}

const (
	defaultLimit = 100
	maxLimit     = 1000
)

func (p Page) limit() int {
	switch {
	case p.Limit <= 0:
		return defaultLimit
	case p.Limit > maxLimit:
		return maxLimit
	}
	return p.Limit
}

// ErrBadCursor is returned for a cursor this store did not hand out.
var ErrBadCursor = errors.New("invalid page cursor")

func newID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// CreateInvestigation stores a new investigation and returns it as stored.
func (s *Store) CreateInvestigation(ctx context.Context, inv Investigation) (Investigation, error) {
	if inv.ID == "" {
		inv.ID = newID()
	}
	if inv.Status == "" {
		inv.Status = Queued
	}
	if !inv.Status.Valid() {
		return inv, fmt.Errorf("store: investigation %s: unknown status %q", inv.ID, inv.Status)
	}
	src, err := json.Marshal(inv.Source)
	if err != nil {
		return inv, fmt.Errorf("store: investigation %s: source: %w", inv.ID, err)
	}
	opts := "{}"
	if len(inv.Options) > 0 {
		if !json.Valid(inv.Options) {
			return inv, fmt.Errorf("store: investigation %s: options are not valid JSON", inv.ID)
		}
		opts = string(inv.Options)
	}
	now := time.Now().UTC()
	inv.Created, inv.Updated = now, now
	_, err = s.db.ExecContext(ctx, s.rebind(`INSERT INTO investigations
    (id, name, source, time_from, time_to, options, status, error, events, findings, created, updated, owner)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		inv.ID, inv.Name, string(src), toNanos(inv.From), toNanos(inv.To), opts, string(inv.Status),
		inv.Error, inv.Events, inv.Findings, toNanos(now), toNanos(now), inv.Owner)
	if err != nil {
		return inv, fmt.Errorf("store: create investigation %s: %w", inv.ID, err)
	}
	inv.From, inv.To = fromNanos(toNanos(inv.From)), fromNanos(toNanos(inv.To))
	inv.Created, inv.Updated = fromNanos(toNanos(now)), fromNanos(toNanos(now))
	inv.Options = json.RawMessage(opts)
	return inv, nil
}

const investigationColumns = `id, name, source, time_from, time_to, options, status, error, events, findings, created, updated, owner`

type scanner interface{ Scan(dest ...any) error }

func scanInvestigation(r scanner) (Investigation, error) {
	var (
		inv                        Investigation
		src, opts, status          string
		from, to, created, updated int64
	)
	if err := r.Scan(&inv.ID, &inv.Name, &src, &from, &to, &opts, &status, &inv.Error,
		&inv.Events, &inv.Findings, &created, &updated, &inv.Owner); err != nil {
		return inv, err
	}
	if err := json.Unmarshal([]byte(src), &inv.Source); err != nil {
		return inv, fmt.Errorf("investigation %s: source: %w", inv.ID, err)
	}
	inv.Options = json.RawMessage(opts)
	inv.Status = Status(status)
	inv.From, inv.To = fromNanos(from), fromNanos(to)
	inv.Created, inv.Updated = fromNanos(created), fromNanos(updated)
	return inv, nil
}

// GetInvestigation returns one investigation, or ErrNotFound.
func (s *Store) GetInvestigation(ctx context.Context, id string) (Investigation, error) {
	inv, err := scanInvestigation(s.db.QueryRowContext(ctx,
		s.rebind("SELECT "+investigationColumns+" FROM investigations WHERE id = ?"), id))
	if errors.Is(err, sql.ErrNoRows) {
		return inv, fmt.Errorf("store: investigation %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return inv, fmt.Errorf("store: investigation %s: %w", id, err)
	}
	return inv, nil
}

// ListInvestigations returns investigations newest first, and the cursor of
// the next page ("" after the last).
func (s *Store) ListInvestigations(ctx context.Context, page Page) ([]Investigation, string, error) {
	q := "SELECT " + investigationColumns + " FROM investigations"
	var args []any
	if page.Cursor != "" {
		created, id, err := decodeInvestigationCursor(page.Cursor)
		if err != nil {
			return nil, "", err
		}
		q += " WHERE (created < ? OR (created = ? AND id < ?))"
		args = append(args, created, created, id)
	}
	limit := page.limit()
	q += " ORDER BY created DESC, id DESC LIMIT " + strconv.Itoa(limit+1)
	rows, err := s.db.QueryContext(ctx, s.rebind(q), args...)
	if err != nil {
		return nil, "", fmt.Errorf("store: list investigations: %w", err)
	}
	defer rows.Close()
	var out []Investigation
	for rows.Next() {
		inv, err := scanInvestigation(rows)
		if err != nil {
			return nil, "", fmt.Errorf("store: list investigations: %w", err)
		}
		out = append(out, inv)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("store: list investigations: %w", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		last := out[limit-1]
		next = encodeCursor(strconv.FormatInt(toNanos(last.Created), 10), last.ID)
	}
	return out, next, nil
}

func decodeInvestigationCursor(c string) (int64, string, error) {
	parts, err := decodeCursor(c, 2)
	if err != nil {
		return 0, "", err
	}
	created, err := strconv.ParseInt(parts[0], 10, 64)
	if err != nil {
		return 0, "", ErrBadCursor
	}
	return created, parts[1], nil
}

// UpdateProgress records how many events have been read and findings
// stored so far; a queued investigation becomes running.
func (s *Store) UpdateProgress(ctx context.Context, id string, events, findings int64) error {
	res, err := s.db.ExecContext(ctx, s.rebind(`UPDATE investigations
    SET events = ?, findings = ?, updated = ?,
        status = CASE WHEN status = 'queued' THEN 'running' ELSE status END
    WHERE id = ?`), events, findings, toNanos(time.Now()), id)
	return s.checkUpdate(res, err, "update progress of", id)
}

// Finish ends an investigation with a final status (done, failed or
// cancelled) and, for failures, the error.
func (s *Store) Finish(ctx context.Context, id string, status Status, cause error) error {
	if !status.Final() {
		return fmt.Errorf("store: finish investigation %s: %q is not a final status", id, status)
	}
	msg := ""
	if cause != nil {
		msg = cause.Error()
	}
	res, err := s.db.ExecContext(ctx, s.rebind(`UPDATE investigations SET status = ?, error = ?, updated = ? WHERE id = ?`),
		string(status), msg, toNanos(time.Now()), id)
	return s.checkUpdate(res, err, "finish", id)
}

func (s *Store) checkUpdate(res sql.Result, err error, what, id string) error {
	if err != nil {
		return fmt.Errorf("store: %s investigation %s: %w", what, id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("store: %s investigation %s: %w", what, id, err)
	}
	if n == 0 {
		return fmt.Errorf("store: %s investigation %s: %w", what, id, ErrNotFound)
	}
	return nil
}

// Cursors are opaque to callers: base64 of NUL-separated fields.

func encodeCursor(fields ...string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strings.Join(fields, "\x00")))
}

func decodeCursor(c string, n int) ([]string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return nil, ErrBadCursor
	}
	parts := strings.SplitN(string(b), "\x00", n) // the last field, an id, may hold anything
	if len(parts) != n {
		return nil, ErrBadCursor
	}
	return parts, nil
}
