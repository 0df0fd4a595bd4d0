package alert

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"

	"github.com/loupe-sec/loupe/internal/lru"
)

// Cache defaults.
const (
	DefaultCacheTTL  = 24 * time.Hour
	DefaultCacheSize = 10000
)

// Cache remembers analyses by normalised alert, so the same alert firing
// again (another pid, another time, another container) is answered at once.
// Entries expire after the TTL; the least recently used entry goes when the
// cache is full. Only valid analyses are stored. It is safe for concurrent
// use and holds everything in memory only.
type Cache struct {
	c *lru.Cache[cached]
}

type cached struct {
	analysis Analysis
	count    int // times analysed or served
}

// NewCache returns a cache; ttl <= 0 and max <= 0 take the defaults.
func NewCache(ttl time.Duration, max int) *Cache {
	if ttl <= 0 {
		ttl = DefaultCacheTTL
	}
	if max <= 0 {
		max = DefaultCacheSize
	}
	return &Cache{c: lru.New[cached](ttl, max)}
}

// Get returns the cached analysis for key, with Meta.Cached set and
// Meta.DedupCount counting this hit.
func (c *Cache) Get(key string) (Analysis, bool) {
	e, ok := c.c.Get(key, func(e *cached) { e.count++ })
	if !ok {
		return Analysis{}, false
	}
	a := e.analysis.clone()
	a.Meta.Cached = true
	a.Meta.DedupCount = e.count
	return a, true
}

// Put stores a valid analysis under key and returns it with its dedup
// count. An invalid analysis is not stored and its error returned.
func (c *Cache) Put(key string, a Analysis) (Analysis, error) {
	if err := a.Validate(); err != nil {
		return a, err
	}
	e := c.c.Upsert(key, func(old cached, had bool) cached {
		count := 1
		if had { // a concurrent miss analysed it too
			count = old.count + 1
		}
		a.Meta.Cached = false
		a.Meta.DedupCount = count
		return cached{analysis: a.clone(), count: count}
	})
	a.Meta.DedupCount = e.count
	return a, nil
}

// Len returns the number of entries, expired ones included until touched.
func (c *Cache) Len() int { return c.c.Len() }

// Stats returns the lookups answered from the cache and those that were
// not (absent or expired) since it was made.
func (c *Cache) Stats() (hits, misses int64) { return c.c.Stats() }

// Key is the cache key of an alert: a hash of its rule and its normalised
// output.
func Key(a Alert) string {
	h := sha256.New()
	h.Write([]byte(strings.ToLower(strings.Join(strings.Fields(a.Rule), " "))))
	h.Write([]byte{0})
	h.Write([]byte(Normalize(a.Output)))
	return hex.EncodeToString(h.Sum(nil))
}

// Normalize reduces an alert output to what stays the same when the same
// alert fires again: it lower-cases the text, collapses white space and
// replaces every number-like word (timestamps, pids, ids, IP addresses,
// ports, container and other hex ids) with "#", runs of such words joined by
// punctuation (10.0.0.5:443, 2024-05-01T10:00:00Z) becoming a single "#".
func Normalize(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	pendingSep := "" // separators after the last "#", dropped if another # follows
	lastHash := false
	space := false
	for i := 0; i < len(s); {
		c := s[i]
		if isAlnum(c) {
			j := i
			for j < len(s) && isAlnum(s[j]) {
				j++
			}
			word := s[i:j]
			i = j
			if numberLike(word) || lastHash && strings.Contains(pendingSep, ":") && hexGroup(word) {
				if !lastHash {
					flushSpace(&b, &space)
					b.WriteString(pendingSep)
					b.WriteByte('#')
				}
				pendingSep = ""
				lastHash = true
				continue
			}
			if lastHash {
				b.WriteString(pendingSep)
				pendingSep = ""
			}
			flushSpace(&b, &space)
			b.WriteString(strings.ToLower(word))
			lastHash = false
			continue
		}
		i++
		if c == ' ' || c == '\t' || c == '\n' || c == '\r' {
			if lastHash {
				lastHash = false
				pendingSep = ""
			}
			space = b.Len() > 0
			continue
		}
		if lastHash && strings.IndexByte(".:-_/+", c) >= 0 {
			pendingSep += string(c)
			continue
		}
		if lastHash {
			b.WriteString(pendingSep)
			pendingSep = ""
			lastHash = false
		}
		flushSpace(&b, &space)
		b.WriteByte(c)
	}
	b.WriteString(pendingSep)
	return b.String()
}

func flushSpace(b *strings.Builder, space *bool) {
	if *space {
		b.WriteByte(' ')
		*space = false
	}
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// numberLike: all digits; hex of 12+ characters (container ids, hashes);
// hex of 8+ characters with a digit; or at least half digits (2024t10, fe80,
// 0x1f).
func numberLike(w string) bool {
	digits, hex := 0, true
	for i := 0; i < len(w); i++ {
		c := w[i]
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F':
		default:
			hex = false
		}
	}
	if hex && len(w) >= 12 {
		return true
	}
	if digits == 0 {
		return false
	}
	return digits == len(w) || hex && len(w) >= 8 || 2*digits >= len(w)
}

// hexGroup matches a group of an IPv6 address (1 to 4 hex digits).
func hexGroup(w string) bool {
	if len(w) > 4 {
		return false
	}
	for i := 0; i < len(w); i++ {
		c := w[i] | 0x20
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
