package alert

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

func validAnalysis(vector string) Analysis {
	return Analysis{AttackVector: vector,
		RiskAssessment: Risk{Severity: "high", Confidence: "medium", Impact: "i"},
		FalsePositive:  FalsePositive{Likelihood: "low"}}
}

func TestKeyIgnoresVolatileValues(t *testing.T) {
	a := Alert{Rule: "Terminal shell in container", Output: "17:20:42.123456789: Notice A shell was spawned (user=root pid=4242 connection=10.0.0.5:51234->93.184.216.34:443 container_id=3ad7b26ded6d image=nginx) at 2024-05-01T10:00:00Z ipv6=fe80::1"}
	b := Alert{Rule: "terminal shell  in container", Output: "09:01:02.000000001: Notice A shell was spawned (user=root pid=17 connection=192.168.1.9:40000->8.8.8.8:443 container_id=0123456789ab image=nginx) at 2025-12-31T23:59:59Z ipv6=2001:db8::42"}
	if Key(a) != Key(b) {
		t.Errorf("keys differ:\n%s\n%s", Normalize(a.Output), Normalize(b.Output))
	}
	for _, other := range []Alert{
		{Rule: "Read sensitive file untrusted", Output: a.Output},
		{Rule: a.Rule, Output: "17:20:42.123456789: Notice A shell was spawned (user=alice pid=4242 image=nginx)"},
		{Rule: a.Rule, Output: "17:20:42.123456789: Notice A shell was spawned (user=root pid=4242 image=redis)"},
	} {
		if Key(other) == Key(a) {
			t.Errorf("%q / %q shares the key of %q", other.Rule, other.Output, a.Output)
		}
	}
}

func TestNormalizeKeepsWords(t *testing.T) {
	got := Normalize("File  below /etc OPENED by nginx1 (pid=12 id=deadbeefcafe)")
	want := "file below /etc opened by nginx1 (pid=# id=#)"
	if got != want {
		t.Errorf("Normalize = %q, want %q", got, want)
	}
}

func TestCacheHitCountsAndTTL(t *testing.T) {
	now := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	c := NewCache(time.Hour, 10)
	c.c.SetClock(func() time.Time { return now })
	if _, ok := c.Get("k"); ok {
		t.Fatal("hit on empty cache")
	}
	put, err := c.Put("k", validAnalysis("v"))
	if err != nil || put.Meta.DedupCount != 1 || put.Meta.Cached {
		t.Fatalf("Put = %+v, %v", put.Meta, err)
	}
	got, ok := c.Get("k")
	if !ok || !got.Meta.Cached || got.Meta.DedupCount != 2 || got.AttackVector != "v" {
		t.Fatalf("first hit = %+v, %v", got.Meta, ok)
	}
	got, _ = c.Get("k")
	if got.Meta.DedupCount != 3 {
		t.Fatalf("second hit dedup_count = %d", got.Meta.DedupCount)
	}
	now = now.Add(59 * time.Minute)
	if _, ok := c.Get("k"); !ok {
		t.Fatal("expired early")
	}
	now = now.Add(time.Minute)
	if _, ok := c.Get("k"); ok {
		t.Fatal("served after the TTL")
	}
	if c.Len() != 0 {
		t.Fatalf("expired entry kept, len %d", c.Len())
	}
	// Lookups: miss (empty), 3 hits, miss (expired).
	if h, m := c.Stats(); h != 3 || m != 2 {
		t.Fatalf("Stats() = %d hits, %d misses; want 3, 2", h, m)
	}
}

func TestCacheReturnsCopies(t *testing.T) {
	c := NewCache(0, 0)
	a := validAnalysis("v")
	a.Mitigations.Immediate = []string{"one"}
	c.Put("k", a)
	a.Mitigations.Immediate[0] = "changed by caller"
	got, _ := c.Get("k")
	got.Mitigations.Immediate[0] = "changed again"
	again, _ := c.Get("k")
	if again.Mitigations.Immediate[0] != "one" {
		t.Fatalf("cache entry was mutated: %q", again.Mitigations.Immediate[0])
	}
}

func TestCacheBoundEvictsLeastRecentlyUsed(t *testing.T) {
	c := NewCache(time.Hour, 3)
	for i := range 3 {
		c.Put(fmt.Sprint(i), validAnalysis("v"))
	}
	c.Get("0") // 1 is now the least recently used
	c.Put("3", validAnalysis("v"))
	if c.Len() != 3 {
		t.Fatalf("len %d, want 3", c.Len())
	}
	if _, ok := c.Get("1"); ok {
		t.Error("least recently used entry survived")
	}
	for _, k := range []string{"0", "2", "3"} {
		if _, ok := c.Get(k); !ok {
			t.Errorf("entry %s evicted", k)
		}
	}
}

func TestCacheRefusesInvalid(t *testing.T) {
	c := NewCache(0, 0)
	bad := validAnalysis("v")
	bad.RiskAssessment.Severity = "Severe"
	if _, err := c.Put("k", bad); err == nil {
		t.Fatal("invalid analysis stored")
	}
	if c.Len() != 0 {
		t.Fatal("cache not empty")
	}
}

func TestCacheConcurrent(t *testing.T) {
	c := NewCache(time.Hour, 50)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				k := fmt.Sprint((g + i) % 80)
				if _, ok := c.Get(k); !ok {
					c.Put(k, validAnalysis("v"))
				}
			}
		})
	}
	wg.Wait()
	if c.Len() > 50 {
		t.Fatalf("len %d over the bound", c.Len())
	}
}
