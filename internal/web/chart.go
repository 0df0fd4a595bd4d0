package web

import (
	"fmt"
	"strconv"
	"time"

	"github.com/loupe-sec/loupe/internal/finding"
	"github.com/loupe-sec/loupe/internal/store"
)

// chart is the geometry of the timeline SVG, computed here so the template
// only places shapes. Coordinates are in the viewBox (chartW × chartH).
type chart struct {
	W, H          int
	Left, Right   float64 // x of the plot's edges
	Top, Bottom   float64 // y of the findings plot's edges
	VolTop, Axis  float64 // y of the events-read band's top and of the time axis under it
	Bars          []chartBar
	Range         string // first and last instant shown
	FindingsMax   int64
	EventsMax     int64
	Ticks         []chartTick
	Selection     *chartSpan // the from/to filter, when it overlaps the chart
	Empty         bool
	HasVolume     bool
	Width         string // bucket width, e.g. "2 min"
	Undated       int64  // findings without time
	UndatedEvents int64
	TotalEvents   int64
}

type chartBar struct {
	X, W  float64
	VolY  float64 // top of the events-read bar (VolH = 0 without volume)
	VolH  float64
	Segs  []chartSeg
	Href  string // filter on this bucket's time range
	Title string // tooltip
}

type chartSeg struct {
	Y, H  float64
	Class string // priority name
}

type chartTick struct {
	X     float64
	Label string
}

type chartSpan struct{ X, W float64 }

const (
	chartW = 1000
	chartH = 236
)

// buildChart lays out tl. href makes the address of a bucket's time range.
func buildChart(tl store.Timeline, from, to time.Time, href func(from, to time.Time) string) chart {
	c := chart{W: chartW, H: chartH, Left: 44, Right: chartW - 56, Top: 10, Bottom: 150, VolTop: 162, Axis: chartH - 26,
		HasVolume: tl.HasVolume, Undated: tl.UndatedFindings, UndatedEvents: tl.UndatedEvents}
	n := len(tl.Buckets)
	if n == 0 {
		c.Empty = true
		return c
	}
	c.Width = humanDuration(tl.Width)
	for _, b := range tl.Buckets {
		var sum int64
		for _, v := range b.Findings {
			sum += v
		}
		c.FindingsMax = max(c.FindingsMax, sum)
		c.EventsMax = max(c.EventsMax, b.Events)
		c.TotalEvents += b.Events
	}
	c.TotalEvents += tl.UndatedEvents
	fMax, eMax := float64(max(c.FindingsMax, 1)), float64(max(c.EventsMax, 1))
	step := (c.Right - c.Left) / float64(n)
	gap := min(step*0.18, 3)
	plotH := c.Bottom - c.Top
	for i, b := range tl.Buckets {
		x := c.Left + float64(i)*step
		bar := chartBar{X: x + gap/2, W: step - gap, Href: href(b.Start, b.Start.Add(tl.Width-time.Second))}
		y := c.Bottom
		var sum int64
		for p := finding.Info; p <= finding.Critical; p++ {
			v := b.Findings[p]
			if v == 0 {
				continue
			}
			sum += v
			h := float64(v) / fMax * plotH
			y -= h
			bar.Segs = append(bar.Segs, chartSeg{Y: y, H: h, Class: p.String()})
		}
		bar.Title = fmt.Sprintf("%s – %s UTC · %d finding%s", stamp(b.Start, tl.Width), stamp(b.Start.Add(tl.Width), tl.Width), sum, plural(sum))
		if tl.HasVolume {
			bar.Title += fmt.Sprintf(" · %d event%s read", b.Events, plural(b.Events))
			bar.VolH = float64(b.Events) / eMax * (c.Axis - c.VolTop)
			bar.VolY = c.Axis - bar.VolH
		}
		c.Bars = append(c.Bars, bar)
	}
	c.Ticks = ticks(tl, c.Left, c.Right)
	c.Range = tl.Start.UTC().Format("2006-01-02 15:04") + " – " + tl.End.UTC().Format("2006-01-02 15:04") + " UTC"
	if !from.IsZero() || !to.IsZero() {
		span := tl.End.Sub(tl.Start)
		x0, x1 := c.Left, c.Right
		if !from.IsZero() {
			x0 = c.Left + (c.Right-c.Left)*float64(from.Sub(tl.Start))/float64(span)
		}
		if !to.IsZero() {
			x1 = c.Left + (c.Right-c.Left)*float64(to.Sub(tl.Start))/float64(span)
		}
		x0, x1 = max(x0, c.Left), min(x1, c.Right)
		if x1 > x0 {
			c.Selection = &chartSpan{X: x0, W: x1 - x0}
		}
	}
	return c
}

// tickSteps are the intervals between time labels.
var tickSteps = []time.Duration{
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour,
	2 * 24 * time.Hour, 7 * 24 * time.Hour, 14 * 24 * time.Hour, 30 * 24 * time.Hour, 91 * 24 * time.Hour,
	182 * 24 * time.Hour, 365 * 24 * time.Hour,
}

// maxTicks is how many time labels fit under the chart.
const maxTicks = 8

// ticks places time labels at round instants (multiples of a round step
// since the epoch) between the chart's start and end.
func ticks(tl store.Timeline, left, right float64) []chartTick {
	span := tl.End.Sub(tl.Start)
	if span <= 0 {
		return nil
	}
	step := tickSteps[len(tickSteps)-1]
	for _, s := range tickSteps {
		if s >= tl.Width && span/s <= maxTicks {
			step = s
			break
		}
	}
	for span/step > maxTicks {
		step *= 2
	}
	layout := "15:04"
	switch {
	case step >= 24*time.Hour:
		layout = "2006-01-02"
	case span > 24*time.Hour:
		layout = "01-02 15:04"
	}
	var out []chartTick
	first := tl.Start.Truncate(step) // Truncate rounds down from the zero time, which keeps steps aligned
	if first.Before(tl.Start) {
		first = first.Add(step)
	}
	for t := first; !t.After(tl.End); t = t.Add(step) {
		x := left + (right-left)*float64(t.Sub(tl.Start))/float64(span)
		out = append(out, chartTick{X: x, Label: t.UTC().Format(layout)})
	}
	return out
}

// stamp formats a bucket boundary as precisely as the bucket width needs.
func stamp(t time.Time, width time.Duration) string {
	t = t.UTC()
	switch {
	case width >= 24*time.Hour:
		return t.Format("2006-01-02")
	}
	return t.Format("2006-01-02 15:04")
}

func humanDuration(d time.Duration) string {
	switch {
	case d%(24*time.Hour) == 0:
		n := int(d / (24 * time.Hour))
		return strconv.Itoa(n) + " day" + plural(int64(n))
	case d%time.Hour == 0:
		n := int(d / time.Hour)
		return strconv.Itoa(n) + " h"
	}
	return strconv.Itoa(int(d/time.Minute)) + " min"
}

func plural(n int64) string {
	if n == 1 {
		return ""
	}
	return "s"
}
