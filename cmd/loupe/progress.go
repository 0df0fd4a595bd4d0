package main

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/loupe-sec/loupe/internal/pipeline"
)

// progressEvery is how often the progress line is redrawn.
const progressEvery = 200 * time.Millisecond

// progress draws a one-line status on a terminal (stderr) and lets other
// messages through without garbling it. When disabled, println just prints.
type progress struct {
	w       io.Writer
	st      *pipeline.Stats
	read    *atomic.Int64
	started time.Time

	mu      sync.Mutex
	enabled bool
	drawn   bool
	done    chan struct{}
	wg      sync.WaitGroup
	once    sync.Once
}

func newProgress(w io.Writer, st *pipeline.Stats, read *atomic.Int64, started time.Time, enabled bool) *progress {
	p := &progress{w: w, st: st, read: read, started: started, enabled: enabled, done: make(chan struct{})}
	if enabled {
		p.wg.Go(p.loop)
	}
	return p
}

func (p *progress) loop() {
	tick := time.NewTicker(progressEvery)
	defer tick.Stop()
	for {
		select {
		case <-p.done:
			return
		case now := <-tick.C:
			p.mu.Lock()
			fmt.Fprintf(p.w, "\r\x1b[K%s", progressLine(p.st.Events.Load(), p.read.Load(), p.st.Errors.Load(), p.st.Findings.Load(), now.Sub(p.started)))
			p.drawn = true
			p.mu.Unlock()
		}
	}
}

// println writes msg on its own line, above the progress line.
func (p *progress) println(msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.drawn = false
	}
	fmt.Fprintln(p.w, msg)
}

// stop ends the redraws and clears the line; safe to call more than once.
func (p *progress) stop() {
	p.once.Do(func() {
		close(p.done)
		p.wg.Wait()
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.drawn {
			fmt.Fprint(p.w, "\r\x1b[K")
			p.drawn = false
		}
	})
}

// progressLine renders the status: events, rate, bytes, bad lines, findings.
func progressLine(events, bytes, bad, findings int64, elapsed time.Duration) string {
	rate := 0.0
	if s := elapsed.Seconds(); s > 0 {
		rate = float64(events) / s
	}
	return fmt.Sprintf("%s events  %s/s  %s read  %d bad lines  %d findings",
		count(float64(events)), count(rate), size(bytes), bad, findings)
}

// count renders n compactly: 950, 12.3k, 4.56M.
func count(n float64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2fG", n/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.2fM", n/1e6)
	case n >= 1e4:
		return fmt.Sprintf("%.1fk", n/1e3)
	}
	return fmt.Sprintf("%.0f", n)
}

// size renders a byte count in binary units.
func size(b int64) string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%d B", b)
	}
	v, u := float64(b), 0
	for v >= unit && u < 4 {
		v /= unit
		u++
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGT"[u-1])
}
