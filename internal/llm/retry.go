package llm

import (
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

// Retry policy: at most maxRetries more attempts after the first, waiting
// baseBackoff·2^n with jitter, or what Retry-After asks; a wait longer than
// maxWait is not made (the error answer is returned instead), which bounds
// the time spent waiting to maxRetries·maxWait. baseBackoff is a variable so that tests can shorten it.
var baseBackoff = 500 * time.Millisecond

const (
	maxRetries = 2
	maxWait    = 10 * time.Second
)

// retryTransport retries requests answered with 429 or 5xx.
type retryTransport struct {
	base http.RoundTripper
}

// retrying returns a copy of hc whose transport retries.
func retrying(hc *http.Client) *http.Client {
	c := *hc
	base := c.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	c.Transport = &retryTransport{base: base}
	return &c
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		r := req
		if attempt > 0 {
			r = req.Clone(req.Context())
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			r.Body = body
		}
		resp, err := t.base.RoundTrip(r)
		if err != nil || attempt == maxRetries || !retryable(resp.StatusCode) ||
			(req.Body != nil && req.Body != http.NoBody && req.GetBody == nil) {
			return resp, err
		}
		wait, ok := t.wait(attempt, resp.Header.Get("Retry-After"))
		if deadline, has := req.Context().Deadline(); has && time.Until(deadline) < wait {
			ok = false // the call would time out while waiting
		}
		if !ok {
			return resp, nil
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		timer := time.NewTimer(wait)
		select {
		case <-req.Context().Done():
			timer.Stop()
			return nil, req.Context().Err()
		case <-timer.C:
		}
	}
}

func retryable(code int) bool {
	return code == http.StatusTooManyRequests || code >= 500 && code <= 599
}

// wait is how long to wait before retry attempt+1; ok is false when the
// server asks for longer than maxWait.
func (t *retryTransport) wait(attempt int, retryAfter string) (time.Duration, bool) {
	d := baseBackoff << attempt
	d = d/2 + rand.N(d/2+1) // jitter: [d/2, d]
	if retryAfter != "" {
		if secs, err := strconv.ParseFloat(retryAfter, 64); err == nil && secs >= 0 {
			d = time.Duration(secs * float64(time.Second))
		} else if at, err := http.ParseTime(retryAfter); err == nil {
			d = max(time.Until(at), 0)
		}
	}
	if d > maxWait {
		return 0, false
	}
	return d, true
}
