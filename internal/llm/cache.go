package llm

import (
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/loupe-sec/loupe/internal/lru"
)

// Cache holds model answers (their JSON text) by key, with the rules of the
// SIB analysis cache: entries expire after a TTL, the least recently used
// entry goes when the cache is full, and only answers that decoded and
// validated may be stored (callers never store a failure). It lives in
// memory only and is safe for concurrent use.
type Cache struct {
	c *lru.Cache[string]
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
	return &Cache{c: lru.New[string](ttl, max)}
}

// Stats returns the lookups answered from the cache and those that were
// not, for metrics.
func (c *Cache) Stats() (hits, misses int64) { return c.c.Stats() }

// Get returns the answer stored under key, if it has not expired.
func (c *Cache) Get(key string) (string, bool) { return c.c.Get(key, nil) }

// Put stores a validated answer under key.
func (c *Cache) Put(key, text string) { c.c.Put(key, text) }

// Len returns the number of entries, expired ones included until touched.
func (c *Cache) Len() int { return c.c.Len() }

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
