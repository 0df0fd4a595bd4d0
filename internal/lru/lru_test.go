package lru

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestExpiryAndEviction(t *testing.T) {
	now := time.Date(2024, 3, 19, 0, 0, 0, 0, time.UTC)
	c := New[string](time.Hour, 3)
	c.SetClock(func() time.Time { return now })
	for i := range 3 {
		c.Put(fmt.Sprint(i), fmt.Sprint("v", i))
	}
	if v, ok := c.Get("0", nil); !ok || v != "v0" { // 0 becomes the most recent
		t.Fatalf("get 0: %q %v", v, ok)
	}
	c.Put("3", "v3") // evicts 1, the least recently used
	if _, ok := c.Get("1", nil); ok {
		t.Error("1 survived eviction")
	}
	for _, k := range []string{"0", "2", "3"} {
		if _, ok := c.Get(k, nil); !ok {
			t.Errorf("%s evicted", k)
		}
	}
	now = now.Add(time.Hour)
	if _, ok := c.Get("0", nil); ok {
		t.Error("entry served at its expiry")
	}
	if c.Len() != 2 {
		t.Errorf("len %d after the expired entry was touched", c.Len())
	}
	if h, m := c.Stats(); h != 4 || m != 2 {
		t.Errorf("hits %d misses %d", h, m)
	}
}

func TestTouchAndUpsert(t *testing.T) {
	c := New[int](time.Hour, 10)
	if got := c.Upsert("k", func(old int, had bool) int {
		if had {
			t.Error("had a value before the first put")
		}
		return old + 1
	}); got != 1 {
		t.Fatalf("upsert %d", got)
	}
	c.Get("k", func(v *int) { *v += 10 })
	if v, _ := c.Get("k", nil); v != 11 {
		t.Errorf("touched value %d", v)
	}
	if got := c.Upsert("k", func(old int, had bool) int { return old + 1 }); got != 12 {
		t.Errorf("upsert over 11: %d", got)
	}
}

// Concurrent use keeps the bound (run with -race).
func TestConcurrent(t *testing.T) {
	c := New[int](time.Minute, 50)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				k := fmt.Sprint((g*7 + i) % 200)
				if _, ok := c.Get(k, func(v *int) { *v++ }); !ok {
					c.Put(k, 1)
				}
			}
		}()
	}
	wg.Wait()
	if c.Len() > 50 {
		t.Errorf("len %d over the bound", c.Len())
	}
	if h, m := c.Stats(); h+m != 8000 {
		t.Errorf("%d lookups counted", h+m)
	}
}
