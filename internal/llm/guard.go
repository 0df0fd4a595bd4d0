package llm

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Limits bound how a Guarded provider is used. Zero values take the
// defaults given.
type Limits struct {
	Concurrency      int           // calls in flight; 0: 4
	CallsPerMinute   int           // token bucket of calls (burst: one minute's worth); 0: no limit
	TokensPerMinute  int           // token bucket of model tokens, input estimated from the prompt's length plus the actual output; 0: no limit
	Timeout          time.Duration // one call, retries included; 0: 60 s
	BreakerThreshold int           // consecutive failed calls that open the circuit; 0: 3
	BreakerCooldown  time.Duration // time open before one probe call is let through; 0: 30 s
}

// ErrCircuitOpen is returned without calling the model while the circuit
// breaker is open (or its probe call is under way).
var ErrCircuitOpen = errors.New("llm: circuit open after repeated failures")

// ErrTimeout wraps a call that ran out of its per-call time.
var ErrTimeout = errors.New("llm: call timed out")

// GuardStats count a Guarded provider's calls since it was made. The fields
// are safe to read at any time.
type GuardStats struct {
	Calls        atomic.Int64 // calls made to the model
	Failures     atomic.Int64 // calls that returned an error (timeouts included)
	Timeouts     atomic.Int64
	Rejected     atomic.Int64 // calls refused by the open circuit
	InputTokens  atomic.Int64
	OutputTokens atomic.Int64
}

// Guarded is a Provider with bounded concurrency, token-bucket rate limits,
// a per-call timeout and a circuit breaker. Failures (errors from the
// underlying provider, timeouts) count towards the breaker; a model that
// answers, even badly, is a success here. It is safe for concurrent use.
type Guarded struct {
	p       Provider
	lim     Limits
	sem     chan struct{}
	calls   *bucket
	tokens  *bucket
	breaker breaker
	Stats   GuardStats
}

// Guard wraps p.
func Guard(p Provider, l Limits) *Guarded {
	if l.Concurrency <= 0 {
		l.Concurrency = 4
	}
	if l.Timeout <= 0 {
		l.Timeout = 60 * time.Second
	}
	if l.BreakerThreshold <= 0 {
		l.BreakerThreshold = 3
	}
	if l.BreakerCooldown <= 0 {
		l.BreakerCooldown = 30 * time.Second
	}
	g := &Guarded{p: p, lim: l, sem: make(chan struct{}, l.Concurrency)}
	g.breaker = breaker{threshold: l.BreakerThreshold, cooldown: l.BreakerCooldown, now: time.Now}
	if l.CallsPerMinute > 0 {
		g.calls = newBucket(float64(l.CallsPerMinute))
	}
	if l.TokensPerMinute > 0 {
		g.tokens = newBucket(float64(l.TokensPerMinute))
	}
	return g
}

// Limits returns the limits in effect, defaults filled in.
func (g *Guarded) Limits() Limits { return g.lim }

func (g *Guarded) Name() string  { return g.p.Name() }
func (g *Guarded) Model() string { return g.p.Model() }

// EstimateTokens is a rough count of model tokens in s (four bytes each).
func EstimateTokens(s string) int { return len(s)/4 + 1 }

// Generate waits for the rate limits and a free slot (both bounded by ctx),
// then calls the model within the per-call timeout, unless the circuit is
// open.
func (g *Guarded) Generate(ctx context.Context, r Request) (Response, error) {
	if !g.breaker.allow() {
		g.Stats.Rejected.Add(1)
		return Response{}, ErrCircuitOpen
	}
	probeDone := false
	defer func() {
		if !probeDone {
			g.breaker.cancelProbe()
		}
	}()
	if g.calls != nil {
		if err := g.calls.take(ctx, 1); err != nil {
			return Response{}, fmt.Errorf("llm: waiting for the call rate limit: %w", err)
		}
	}
	if g.tokens != nil {
		if err := g.tokens.take(ctx, float64(EstimateTokens(r.System)+EstimateTokens(r.User))); err != nil {
			return Response{}, fmt.Errorf("llm: waiting for the token rate limit: %w", err)
		}
	}
	select {
	case g.sem <- struct{}{}:
	case <-ctx.Done():
		return Response{}, fmt.Errorf("llm: waiting for a call slot: %w", context.Cause(ctx))
	}
	defer func() { <-g.sem }()

	cctx, cancel := context.WithTimeout(ctx, g.lim.Timeout)
	defer cancel()
	g.Stats.Calls.Add(1)
	resp, err := g.p.Generate(cctx, r)
	g.Stats.InputTokens.Add(int64(resp.InputTokens))
	g.Stats.OutputTokens.Add(int64(resp.OutputTokens))
	if g.tokens != nil && resp.OutputTokens > 0 {
		g.tokens.debit(float64(resp.OutputTokens))
	}
	if err != nil && ctx.Err() != nil {
		return resp, err // the caller gave up: not the model's failure
	}
	probeDone = true
	if err != nil {
		g.Stats.Failures.Add(1)
		if cctx.Err() == context.DeadlineExceeded {
			g.Stats.Timeouts.Add(1)
			err = fmt.Errorf("%w after %s: %w", ErrTimeout, g.lim.Timeout, err)
		}
	}
	g.breaker.record(err == nil)
	return resp, err
}

// CircuitOpen reports whether calls are being refused now.
func (g *Guarded) CircuitOpen() bool { return g.breaker.isOpen() }

// bucket is a token bucket refilled at rate per minute, holding at most one
// minute's worth. Its level may go negative after a debit.
type bucket struct {
	mu     sync.Mutex
	rate   float64 // per second
	cap    float64
	level  float64
	last   time.Time
	now    func() time.Time
	sleepC func(time.Duration) <-chan time.Time
}

func newBucket(perMinute float64) *bucket {
	return &bucket{rate: perMinute / 60, cap: perMinute, level: perMinute, last: time.Now(), now: time.Now, sleepC: time.After}
}

func (b *bucket) refill() {
	t := b.now()
	b.level = min(b.cap, b.level+t.Sub(b.last).Seconds()*b.rate)
	b.last = t
}

// take removes n (at most the capacity) from the bucket, waiting for it.
func (b *bucket) take(ctx context.Context, n float64) error {
	n = min(n, b.cap)
	for {
		b.mu.Lock()
		b.refill()
		if b.level >= n {
			b.level -= n
			b.mu.Unlock()
			return nil
		}
		wait := time.Duration((n - b.level) / b.rate * float64(time.Second))
		b.mu.Unlock()
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-b.sleepC(max(wait, time.Millisecond)):
		}
	}
}

func (b *bucket) debit(n float64) {
	b.mu.Lock()
	b.refill()
	b.level -= n
	b.mu.Unlock()
}

// breaker is a circuit breaker: closed until threshold consecutive
// failures, then open for cooldown, then half-open: one probe call decides.
type breaker struct {
	threshold int
	cooldown  time.Duration
	now       func() time.Time

	mu       sync.Mutex
	failures int
	openedAt time.Time
	open     bool
	probing  bool
}

func (b *breaker) allow() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.open {
		return true
	}
	if b.probing || b.now().Sub(b.openedAt) < b.cooldown {
		return false
	}
	b.probing = true // half-open: this call is the probe
	return true
}

// cancelProbe releases a probe slot whose call never reached the model.
func (b *breaker) cancelProbe() {
	b.mu.Lock()
	b.probing = false
	b.mu.Unlock()
}

func (b *breaker) record(ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.probing = false
	if ok {
		b.failures, b.open = 0, false
		return
	}
	b.failures++
	if b.open || b.failures >= b.threshold {
		b.open, b.openedAt = true, b.now()
	}
}

func (b *breaker) isOpen() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.open
}
