package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/loupe-sec/loupe/internal/finding"
)

// JobState is what a background job records so that it can be resumed
// after a crash.
type JobState struct {
	// Checkpoint is the number of source events fully processed: every
	// finding they produced is committed. It never decreases.
	Checkpoint int64
	// SourceState is the job runner's fingerprint of its source (for a
	// file, its size and modification time), opaque to the store.
	SourceState string
}

// JobState returns the resume state of an investigation, or ErrNotFound.
func (s *Store) JobState(ctx context.Context, id string) (JobState, error) {
	var st JobState
	err := s.db.QueryRowContext(ctx, s.rebind("SELECT checkpoint, source_state FROM investigations WHERE id = ?"), id).
		Scan(&st.Checkpoint, &st.SourceState)
	if errors.Is(err, sql.ErrNoRows) {
		return st, fmt.Errorf("store: investigation %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return st, fmt.Errorf("store: job state of investigation %s: %w", id, err)
	}
	return st, nil
}

// SetSourceState records the fingerprint of an investigation's source.
func (s *Store) SetSourceState(ctx context.Context, id, state string) error {
	res, err := s.db.ExecContext(ctx, s.rebind("UPDATE investigations SET source_state = ?, updated = ? WHERE id = ?"),
		state, toNanos(time.Now()), id)
	return s.checkUpdate(res, err, "set source state of", id)
}

// Commit stores a batch of findings of an investigation and, in the same
// transaction, the event volume counted in vol since the last commit (vol
// may be nil; it is emptied, and refilled if the commit fails) and its
// progress: events read so far, the checkpoint (source events whose
// findings and volume are all in this or an earlier batch) and the number
// of distinct findings stored. Events and checkpoint only move
// forward: a resumed job replaying its source from the start does not set
// them back. A queued investigation becomes running. Findings are upserted
// by id, as AddFindings does, so committing a batch again changes nothing.
func (s *Store) Commit(ctx context.Context, id string, fs []*finding.Finding, vol *Volume, events, checkpoint int64) (err error) {
	var minutes map[int64]int64
	if vol != nil {
		minutes = vol.take()
	}
	defer func() {
		if err != nil {
			if len(minutes) > 0 {
				vol.giveBack(minutes)
			}
			err = fmt.Errorf("store: commit %d findings of investigation %s: %w", len(fs), id, err)
		}
	}()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, s.rebind(`UPDATE investigations SET
        checkpoint = CASE WHEN checkpoint > ? THEN checkpoint ELSE ? END,
        events = CASE WHEN events > ? THEN events ELSE ? END,
        updated = ?,
        status = CASE WHEN status = 'queued' THEN 'running' ELSE status END
    WHERE id = ?`), checkpoint, checkpoint, events, events, toNanos(time.Now()), id)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return ErrNotFound
	}
	if err := s.writeFindings(ctx, tx, id, Provenance{}, fs); err != nil {
		return err
	}
	if len(minutes) > 0 {
		if err := s.writeVolume(ctx, tx, id, minutes); err != nil {
			return err
		}
	}
	if len(fs) > 0 {
		if _, err := tx.ExecContext(ctx, s.rebind(`UPDATE investigations
    SET findings = (SELECT COUNT(*) FROM findings WHERE investigation_id = ?) WHERE id = ?`), id, id); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// Unfinished returns the investigations still queued or running, oldest
// first: after a restart, the jobs to resume or to fail.
func (s *Store) Unfinished(ctx context.Context) ([]Investigation, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+investigationColumns+
		" FROM investigations WHERE status IN ('queued', 'running') ORDER BY created, id")
	if err != nil {
		return nil, fmt.Errorf("store: unfinished investigations: %w", err)
	}
	defer rows.Close()
	var out []Investigation
	for rows.Next() {
		inv, err := scanInvestigation(rows)
		if err != nil {
			return nil, fmt.Errorf("store: unfinished investigations: %w", err)
		}
		out = append(out, inv)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: unfinished investigations: %w", err)
	}
	return out, nil
}

// Claim makes owner the owner of an unfinished investigation unless
// another owner has updated it since staleBefore, and reports whether it
// did. It is one conditional UPDATE: of two processes claiming the same
// stale job, one wins.
func (s *Store) Claim(ctx context.Context, id, owner string, staleBefore time.Time) (bool, error) {
	res, err := s.db.ExecContext(ctx, s.rebind(`UPDATE investigations SET owner = ?, updated = ?
    WHERE id = ? AND status IN ('queued', 'running') AND (owner = '' OR owner = ? OR updated < ?)`),
		owner, toNanos(time.Now()), id, owner, toNanos(staleBefore))
	if err != nil {
		return false, fmt.Errorf("store: claim investigation %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("store: claim investigation %s: %w", id, err)
	}
	return n == 1, nil
}

// Heartbeat marks owner's unfinished investigations as updated now, so
// other processes sharing the store leave them alone.
func (s *Store) Heartbeat(ctx context.Context, owner string) error {
	if _, err := s.db.ExecContext(ctx, s.rebind(`UPDATE investigations SET updated = ?
    WHERE owner = ? AND status IN ('queued', 'running')`), toNanos(time.Now()), owner); err != nil {
		return fmt.Errorf("store: heartbeat of %s: %w", owner, err)
	}
	return nil
}

// ResetEventVolume deletes the event volume of an investigation, for a
// job that must count its source again from the start.
func (s *Store) ResetEventVolume(ctx context.Context, id string) error {
	if _, err := s.db.ExecContext(ctx, s.rebind("DELETE FROM event_volume WHERE investigation_id = ?"), id); err != nil {
		return fmt.Errorf("store: reset event volume of investigation %s: %w", id, err)
	}
	return nil
}
