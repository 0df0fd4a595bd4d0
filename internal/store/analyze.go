package store

import (
	"context"
	"fmt"
)

// analysisLimit bounds the rows SQLite's ANALYZE reads per index: enough
// for the query planner, cheap (tens of milliseconds) whatever the size.
const analysisLimit = 1000

// Analyze refreshes the statistics the query planner uses to pick
// indexes. Without them SQLite may serve a time-range filter from the
// last-time index and sort the whole range, instead of walking the listing
// order: hundreds of milliseconds on 100k findings instead of a few. Call
// it after a large batch of findings; PostgreSQL's autovacuum does the
// same on its own, so there it only analyzes the findings table now.
func (s *Store) Analyze(ctx context.Context) error {
	if s.dialect == postgres {
		if _, err := s.db.ExecContext(ctx, "ANALYZE findings"); err != nil {
			return fmt.Errorf("store: analyze: %w", err)
		}
		return nil
	}
	// analysis_limit is per connection: set it on the one that analyzes.
	c, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("store: analyze: %w", err)
	}
	defer c.Close()
	if _, err := c.ExecContext(ctx, fmt.Sprintf("PRAGMA analysis_limit = %d", analysisLimit)); err != nil {
		return fmt.Errorf("store: analyze: %w", err)
	}
	if _, err := c.ExecContext(ctx, "ANALYZE"); err != nil {
		return fmt.Errorf("store: analyze: %w", err)
	}
	return nil
}
