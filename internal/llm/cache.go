package llm

import (
	"container/list"
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"sync/atomic"
	"time"
)

// Cache holds model answers (their JSON text) by key, with the rules of the
// SIB analysis cache: entries expire after a TTL, the least recently used
// entry goes when the cache is full, and only answers that decoded and
// validated may be stored (callers never store a failure). It lives in
// memory only and is safe for concurrent use.
type Cache struct {
	ttl time.Duration
	max int
	now func() time.Time

	mu    sync.Mutex
	order *list.List // front = most recently used; values are *cached
	byKey map[string]*list.Element

	Hits, Misses atomic.Int64
}

type cached struct {
	key, text string
	expires   time.Time
}

// NewCache returns a cache of at most max answers kept for ttl (defaults:
// 24 h and 10000 when not positive).
func NewCache(ttl time.Duration, max int) *Cache {
	if ttl <= 0 {
		ttl = 24 * time.Hour
	}
	if max <= 0 {
		max = 10000
	}
	return &Cache{ttl: ttl, max: max, now: time.Now, order: list.New(), byKey: map[string]*list.Element{}}
}

// Stats returns the lookups answered from the cache and those that were
// not, for metrics.
func (c *Cache) Stats() (hits, misses int64) { return c.Hits.Load(), c.Misses.Load() }

// Get returns the answer stored under key, if it has not expired.
func (c *Cache) Get(key string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.byKey[key]
	if !ok {
		c.Misses.Add(1)
		return "", false
	}
	e := el.Value.(*cached)
	if !c.now().Before(e.expires) {
		c.order.Remove(el)
		delete(c.byKey, key)
		c.Misses.Add(1)
		return "", false
	}
	c.Hits.Add(1)
	c.order.MoveToFront(el)
	return e.text, true
}

// Put stores a validated answer under key.
func (c *Cache) Put(key, text string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byKey[key]; ok {
		c.order.Remove(el)
	}
	c.byKey[key] = c.order.PushFront(&cached{key: key, text: text, expires: c.now().Add(c.ttl)})
	for c.order.Len() > c.max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.byKey, last.Value.(*cached).key)
	}
}

// Len returns the number of entries, expired ones included until touched.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}

// Key hashes the parts of a cache key (separated, so that parts cannot run
// into each other).
func Key(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}
