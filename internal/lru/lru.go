// Package lru is a bounded, expiring cache: entries live for a TTL, the
// least recently used one goes when the cache is full, and hits and misses
// are counted for metrics. The SIB alert analyses and the model answers of
// the reasoning stage are both kept in one. It is safe for concurrent use
// and lives in memory only.
package lru

import (
	"container/list"
	"sync"
	"sync/atomic"
	"time"
)

// Cache maps string keys to values of type V.
type Cache[V any] struct {
	ttl time.Duration
	max int
	now func() time.Time

	mu    sync.Mutex
	order *list.List // front = most recently used; values are *entry[V]
	byKey map[string]*list.Element

	hits, misses atomic.Int64
}

type entry[V any] struct {
	key     string
	val     V
	expires time.Time
}

// New returns a cache of at most max entries kept for ttl each.
func New[V any](ttl time.Duration, max int) *Cache[V] {
	return &Cache[V]{ttl: ttl, max: max, now: time.Now, order: list.New(), byKey: map[string]*list.Element{}}
}

// SetClock replaces the clock expiry is measured by (for tests).
func (c *Cache[V]) SetClock(now func() time.Time) {
	c.mu.Lock()
	c.now = now
	c.mu.Unlock()
}

// Get returns the value under key unless it is absent or expired. When
// touch is not nil it may update the stored value first (a hit count).
func (c *Cache[V]) Get(key string, touch func(*V)) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var zero V
	el, ok := c.byKey[key]
	if !ok {
		c.misses.Add(1)
		return zero, false
	}
	e := el.Value.(*entry[V])
	if !c.now().Before(e.expires) {
		c.order.Remove(el)
		delete(c.byKey, key)
		c.misses.Add(1)
		return zero, false
	}
	c.hits.Add(1)
	if touch != nil {
		touch(&e.val)
	}
	c.order.MoveToFront(el)
	return e.val, true
}

// Put stores v under key for a full TTL.
func (c *Cache[V]) Put(key string, v V) {
	c.Upsert(key, func(V, bool) V { return v })
}

// Upsert stores what fn makes of the value already under key (had is
// false when there is none; an expired one still counts) and returns it.
func (c *Cache[V]) Upsert(key string, fn func(old V, had bool) V) V {
	c.mu.Lock()
	defer c.mu.Unlock()
	var old V
	el, had := c.byKey[key]
	if had {
		old = el.Value.(*entry[V]).val
		c.order.Remove(el)
	}
	v := fn(old, had)
	c.byKey[key] = c.order.PushFront(&entry[V]{key: key, val: v, expires: c.now().Add(c.ttl)})
	for c.order.Len() > c.max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.byKey, last.Value.(*entry[V]).key)
	}
	return v
}

// Len returns the number of entries, expired ones included until touched.
func (c *Cache[V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}

// Stats returns the lookups answered from the cache and those that were
// not (absent or expired).
func (c *Cache[V]) Stats() (hits, misses int64) { return c.hits.Load(), c.misses.Load() }
