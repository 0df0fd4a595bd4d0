package main

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	sigmago "github.com/bradleyjkemp/sigma-go"
	"github.com/bradleyjkemp/sigma-go/evaluator"
	"github.com/loupe-sec/loupe/internal/detect"
	"github.com/loupe-sec/loupe/internal/event"
	"github.com/loupe-sec/loupe/internal/sigma"
	"github.com/loupe-sec/loupe/internal/source"
	"github.com/tidwall/gjson"
)

// referenceTable runs the Sigma rules under dir through loupe's engine and
// through the reference engine github.com/bradleyjkemp/sigma-go, side by
// side, over the Windows events of the corpus, and prints a table. Only
// the rules sigma-go can run are timed, for both. Events are parsed once
// beforehand and handed to sigma-go already flattened into maps (which
// favours it); each engine runs for about d on one goroutine.
func referenceTable(c *corpus, dir string, d time.Duration) error {
	var win []*event.Event
	for i, l := range c.lines {
		ev, err := source.ParseLine(l, int64(i+1), source.Options{Name: "bench"})
		if err == nil && ev.EventID != 0 && ev.Channel != "" {
			win = append(win, ev)
		}
	}
	if len(win) == 0 {
		return fmt.Errorf("the corpus has no Windows events")
	}
	flat := make([]map[string]any, len(win))
	for i, ev := range win {
		m := map[string]any{"EventID": fmt.Sprint(ev.EventID), "Channel": ev.Channel, "Provider_Name": ev.Provider, "Computer": ev.Host}
		if ev.DataObject != "" {
			gjson.Parse(ev.DataObject).ForEach(func(k, v gjson.Result) bool {
				m[k.String()] = v.String()
				return true
			})
		}
		flat[i] = m
	}

	// The rules both engines run: each file sigma-go parses and can
	// evaluate (not a collection, no modifier it lacks).
	ctx := context.Background()
	var docs []string
	var refs []*evaluator.RuleEvaluator
	files := 0
	err := filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() || !(strings.HasSuffix(p, ".yml") || strings.HasSuffix(p, ".yaml")) {
			return err
		}
		files++
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		r, err := sigmago.ParseRule(b)
		if err != nil {
			return nil
		}
		e := evaluator.ForRule(r)
		if _, err := e.Matches(ctx, flat[0]); err != nil {
			return nil
		}
		refs = append(refs, e)
		docs = append(docs, string(b))
		return nil
	})
	if err != nil {
		return err
	}
	rs := sigma.Parse("both.yml", []byte(strings.Join(docs, "\n---\n")), sigma.Options{})

	x := rs.NewEngine()
	matches := 0
	count := func(detect.Detection) { matches++ }
	loupeRate := rate(d, len(win), func(i int) { x.Observe(win[i], count) })
	refRate := rate(d, len(win), func(i int) {
		for _, e := range refs {
			e.Matches(ctx, flat[i])
		}
	})

	fmt.Printf("\nSigma engines side by side: %d rule files under %s, %d that both engines run (loupe loaded %d), over %d distinct Windows events of the corpus, replayed; one goroutine each.\n\n",
		files, dir, len(refs), len(rs.Rules), len(win))
	fmt.Println("| engine | rules | events/s | ratio |")
	fmt.Println("|---|---:|---:|---:|")
	fmt.Printf("| github.com/bradleyjkemp/sigma-go v0.6.6 (events pre-flattened) | %d | %.0f | 1× |\n", len(refs), refRate)
	fmt.Printf("| loupe internal/sigma | %d | %.0f | %.0f× |\n", len(rs.Rules), loupeRate, loupeRate/refRate)
	return nil
}

// rate calls f over the events (by index, cycling) for about d and
// returns calls per second; at least one pass over the n events.
func rate(d time.Duration, n int, f func(i int)) float64 {
	start := time.Now()
	calls := 0
	for calls < n || time.Since(start) < d {
		f(calls % n)
		calls++
	}
	return float64(calls) / time.Since(start).Seconds()
}
