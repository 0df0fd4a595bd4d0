package store

import (
	"strconv"
	"testing"
)

// FuzzFindingCursor: any string given as a cursor is either refused with
// ErrBadCursor or decoded; a cursor the store made decodes to what made it.
func FuzzFindingCursor(f *testing.F) {
	f.Add("", 3, int64(1714521600000000000), "f00001")
	f.Add("Zm9v", 0, int64(-5), "a\x00b")
	f.Add(encodeCursor("4", "0", "ünï"), 4, int64(0), "")
	f.Fuzz(func(t *testing.T, raw string, prio int, first int64, id string) {
		if p, fi, i, err := decodeFindingCursor(raw); err == nil {
			// Re-encoding what was decoded must decode the same.
			p2, fi2, i2, err := decodeFindingCursor(encodeCursor(strconv.Itoa(p), strconv.FormatInt(fi, 10), i))
			if err != nil || p2 != p || fi2 != fi || i2 != i {
				t.Fatalf("decoded %d %d %q, re-decoded %d %d %q %v", p, fi, i, p2, fi2, i2, err)
			}
		} else if err != ErrBadCursor {
			t.Fatalf("error %v is not ErrBadCursor", err)
		}
		c := encodeCursor(strconv.Itoa(prio), strconv.FormatInt(first, 10), id)
		p, fi, i, err := decodeFindingCursor(c)
		if err != nil || p != prio || fi != first || i != id {
			t.Fatalf("cursor of (%d, %d, %q) decoded as (%d, %d, %q), %v", prio, first, id, p, fi, i, err)
		}
	})
}
