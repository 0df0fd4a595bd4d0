package llm

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loupe-sec/loupe/internal/llm/llmtest"
)

func refusedURL(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

// Three refused calls open the circuit; further calls are refused without
// a request; after the cooldown one probe goes through and, answered,
// closes it.
func TestBreaker(t *testing.T) {
	var up atomic.Bool
	s := llmtest.New(t, Ollama, func(int, llmtest.Call) llmtest.Reply {
		return llmtest.Reply{Text: `{"verdict":"yes"}`}
	})
	down := refusedURL(t)
	p, err := New(Ollama, "m", down, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	g := Guard(switchable{p: p, up: &up, good: newProvider(t, s, "")}, Limits{BreakerThreshold: 3, BreakerCooldown: 50 * time.Millisecond})
	ctx := context.Background()
	for i := range 3 {
		if _, err := g.Generate(ctx, Request{User: "x"}); err == nil || errors.Is(err, ErrCircuitOpen) {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if _, err := g.Generate(ctx, Request{User: "x"}); !errors.Is(err, ErrCircuitOpen) || !g.CircuitOpen() {
		t.Fatalf("4th call: %v, want the open circuit", err)
	}
	if g.Stats.Calls.Load() != 3 || g.Stats.Rejected.Load() != 1 || g.Stats.Failures.Load() != 3 {
		t.Errorf("calls %d rejected %d failures %d", g.Stats.Calls.Load(), g.Stats.Rejected.Load(), g.Stats.Failures.Load())
	}
	time.Sleep(60 * time.Millisecond)
	// Half-open, probe fails: open again at once.
	if _, err := g.Generate(ctx, Request{User: "x"}); err == nil || errors.Is(err, ErrCircuitOpen) {
		t.Fatalf("probe: %v", err)
	}
	if _, err := g.Generate(ctx, Request{User: "x"}); !errors.Is(err, ErrCircuitOpen) {
		t.Fatalf("after failed probe: %v", err)
	}
	up.Store(true)
	time.Sleep(60 * time.Millisecond)
	if _, err := g.Generate(ctx, Request{User: "x", Schema: testSchema}); err != nil {
		t.Fatalf("probe to a live server: %v", err)
	}
	if g.CircuitOpen() {
		t.Error("a successful probe left the circuit open")
	}
}

// switchable answers through good when up, else through p.
type switchable struct {
	p, good Provider
	up      *atomic.Bool
}

func (s switchable) Name() string  { return s.p.Name() }
func (s switchable) Model() string { return s.p.Model() }
func (s switchable) Generate(ctx context.Context, r Request) (Response, error) {
	if s.up.Load() {
		return s.good.Generate(ctx, r)
	}
	return s.p.Generate(ctx, r)
}

func TestGuardTimeoutAndConcurrency(t *testing.T) {
	var inFlight, peak atomic.Int64
	s := llmtest.New(t, OpenAI, func(n int, _ llmtest.Call) llmtest.Reply {
		cur := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			old := peak.Load()
			if cur <= old || peak.CompareAndSwap(old, cur) {
				break
			}
		}
		time.Sleep(30 * time.Millisecond)
		if n == 0 {
			return llmtest.Reply{Stall: 20 * time.Second}
		}
		return llmtest.Reply{Text: `{"verdict":"no"}`}
	})
	short := Guard(newProvider(t, s, ""), Limits{Timeout: 300 * time.Millisecond})
	start := time.Now()
	_, err := short.Generate(context.Background(), Request{User: "x", Schema: testSchema})
	if !errors.Is(err, ErrTimeout) || time.Since(start) > 5*time.Second || short.Stats.Timeouts.Load() != 1 {
		t.Fatalf("stalled call: %v after %s", err, time.Since(start))
	}
	g := Guard(newProvider(t, s, ""), Limits{Concurrency: 2, Timeout: 20 * time.Second})
	done := make(chan error, 8)
	for range 8 {
		go func() {
			_, err := g.Generate(context.Background(), Request{User: "x", Schema: testSchema})
			done <- err
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
	if p := peak.Load(); p > 2 {
		t.Errorf("%d calls in flight, limit 2", p)
	}
	if g.Stats.Calls.Load() != 8 || g.Stats.InputTokens.Load() != 8*11 || g.Stats.OutputTokens.Load() != 8*7 {
		t.Errorf("calls %d, tokens in %d out %d", g.Stats.Calls.Load(), g.Stats.InputTokens.Load(), g.Stats.OutputTokens.Load())
	}
}

// The bucket lets a minute's worth through at once, then one per interval.
func TestBucket(t *testing.T) {
	now := time.Unix(0, 0)
	b := newBucket(60) // one per second
	b.now = func() time.Time { return now }
	b.last = now
	var slept time.Duration
	b.sleepC = func(d time.Duration) <-chan time.Time {
		slept += d
		now = now.Add(d)
		c := make(chan time.Time, 1)
		c <- now
		return c
	}
	ctx := context.Background()
	for range 60 {
		if err := b.take(ctx, 1); err != nil {
			t.Fatal(err)
		}
	}
	if slept != 0 {
		t.Fatalf("burst waited %s", slept)
	}
	b.take(ctx, 1)
	b.take(ctx, 1)
	if slept < 1900*time.Millisecond || slept > 2100*time.Millisecond {
		t.Errorf("two more calls waited %s, want about 2s", slept)
	}
	b.debit(30)
	slept = 0
	b.take(ctx, 1)
	if slept < 30*time.Second {
		t.Errorf("after a debit of 30 the next call waited %s", slept)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	b.level = -100
	if err := b.take(cctx, 1); err == nil {
		t.Error("take ignores a cancelled context")
	}
}

func TestAnswerCache(t *testing.T) {
	c := NewCache(time.Minute, 2)
	now := time.Unix(0, 0)
	c.c.SetClock(func() time.Time { return now })
	c.Put("a", "A")
	c.Put("b", "B")
	if v, ok := c.Get("a"); !ok || v != "A" {
		t.Fatal("a missing")
	}
	c.Put("c", "C") // evicts b, the least recently used
	if _, ok := c.Get("b"); ok {
		t.Error("b survived eviction")
	}
	now = now.Add(2 * time.Minute)
	if _, ok := c.Get("a"); ok {
		t.Error("a served after its TTL")
	}
	if h, m := c.Stats(); h != 1 || m != 2 {
		t.Errorf("hits %d misses %d", h, m)
	}
	if Key("ab", "c") == Key("a", "bc") {
		t.Error("key parts run into each other")
	}
}
