// Command bench measures loupe end to end on synthetic streams built from
// the shared datasets (or the repository's test corpora when ../shared is
// absent) and prints a table: events/s, MB/s, peak RSS, findings, and the
// time to first finding over HTTP.
//
//	go run ./bench                      # 1M and 10M events
//	go run ./bench -sizes 1000000 -procs 2
//	go run ./bench -sizes 1000000 -rules ~/sigma/rules/windows -reference
//
// Each size runs in a fresh child process so that peak RSS (getrusage
// maxrss) belongs to that run alone.
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/loupe-sec/loupe/internal/detect"
	"github.com/loupe-sec/loupe/internal/pipeline"
	"github.com/loupe-sec/loupe/internal/report"
	"github.com/loupe-sec/loupe/internal/sigma"
	"github.com/loupe-sec/loupe/internal/source"
)

type result struct {
	Events   int64   `json:"events"`
	Bytes    int64   `json:"bytes"`
	Findings int64   `json:"findings"`
	BadLines int64   `json:"bad_lines"`
	Seconds  float64 `json:"seconds"`
	MaxRSSKB int64   `json:"max_rss_kb"`
	LiveHeap uint64  `json:"live_heap"` // bytes in use after a final GC
	Rules    int     `json:"rules"`     // Sigma rules loaded (with -rules)
	LoadSec  float64 `json:"load_s"`    // their load and compile time
}

func main() {
	sizes := flag.String("sizes", "1000000,10000000", "comma-separated event counts")
	procs := flag.Int("procs", 1, "GOMAXPROCS for the measured run (1 = per-core figure)")
	shared := flag.String("shared", envOr("LOUPE_SHARED", "../shared"), "shared datasets directory")
	repo := flag.String("repo", ".", "repository root (for testdata/)")
	child := flag.Int64("child", 0, "internal: run one measurement of N events and print JSON")
	stage := flag.String("stage", "all", "internal: what the child runs: all (read → findings → agent lines) or detect (read, parse, detect)")
	cpuProfile := flag.String("cpuprofile", "", "with -child: write a CPU profile of the measured run to FILE")
	runs := flag.Int("runs", 3, "runs per row; the table shows medians (and the peak RSS range)")
	skipHTTP := flag.Bool("skip-http", false, "skip the time-to-first-finding measurement")
	rulesDir := flag.String("rules", "", "also run the Sigma rules under `DIR` (e.g. a SigmaHQ checkout's rules/windows)")
	reference := flag.Bool("reference", false, "with -rules: also time those rules in loupe and in the reference engine sigma-go, side by side")
	flag.Parse()
	childArgs = []string{"-procs", strconv.Itoa(*procs), "-shared", *shared, "-repo", *repo, "-rules", *rulesDir}

	c, err := loadCorpus(*shared, *repo)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	if *child > 0 {
		runtime.GOMAXPROCS(*procs)
		if *cpuProfile != "" {
			f, err := os.Create(*cpuProfile)
			if err != nil {
				fmt.Fprintln(os.Stderr, "bench:", err)
				os.Exit(1)
			}
			pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
		r, err := measure(c, *child, *stage, *rulesDir)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		json.NewEncoder(os.Stdout).Encode(r)
		return // the deferred StopCPUProfile runs
	}

	fmt.Printf("loupe bench — %s, GOMAXPROCS=%d, %d CPUs, %s, corpus: %s (%d distinct lines)\n\n",
		time.Now().UTC().Format("2006-01-02"), *procs, runtime.NumCPU(), runtime.Version(), c.name, len(c.lines))
	self, _ := os.Executable()
	if base, err := runChild(self, 1, "all"); err == nil {
		fmt.Printf("Baseline: a run over 1 event peaks at %.1f MB RSS (the binary and runtime before any work", float64(base.MaxRSSKB)/1024)
		if *rulesDir != "" {
			fmt.Printf(", with %d Sigma rules from %s loaded and compiled in %.2f s", base.Rules, *rulesDir, base.LoadSec)
		}
		fmt.Print(").\n\n")
	}
	fmt.Printf("Each row: median of %d fresh processes; peak RSS as median (min–max).\n\n", *runs)
	fmt.Println("| stages | events | wall s | events/s | MB/s | peak RSS MB | live heap MB | findings | bad lines |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil || n <= 0 {
			fmt.Fprintln(os.Stderr, "bench: bad size", s)
			os.Exit(2)
		}
		for _, stg := range []string{"detect", "all"} {
			var rs []result
			for range max(*runs, 1) {
				r, err := runChild(self, n, stg)
				if err != nil {
					fmt.Fprintln(os.Stderr, "bench:", err)
					os.Exit(1)
				}
				rs = append(rs, r)
			}
			slices.SortFunc(rs, func(a, b result) int { return cmp.Compare(a.Seconds, b.Seconds) })
			r := rs[len(rs)/2]
			rss := make([]int64, len(rs))
			for i := range rs {
				rss[i] = rs[i].MaxRSSKB
			}
			slices.Sort(rss)
			label := map[string]string{"detect": "parse + detect", "all": "end to end"}[stg]
			if r.Rules > 0 {
				label += fmt.Sprintf(" + %d Sigma rules", r.Rules)
			}
			fmt.Printf("| %s | %d | %.1f | %.0f | %.1f | %.1f (%.1f–%.1f) | %.1f | %d | %d |\n", label, r.Events, r.Seconds,
				float64(r.Events)/r.Seconds, float64(r.Bytes)/1e6/r.Seconds, float64(rss[len(rss)/2])/1024,
				float64(rss[0])/1024, float64(rss[len(rss)-1])/1024, float64(r.LiveHeap)/(1<<20), r.Findings, r.BadLines)
		}
	}
	if *reference && *rulesDir != "" {
		runtime.GOMAXPROCS(1)
		if err := referenceTable(c, *rulesDir, 3*time.Second); err != nil {
			fmt.Fprintln(os.Stderr, "bench: reference:", err)
			os.Exit(1)
		}
	}
	if !*skipHTTP {
		d, err := firstFindingLatency(c, *repo)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench: http:", err)
			os.Exit(1)
		}
		fmt.Printf("\nTime to first finding over HTTP (evidence line sent → finding line received, median of 20): %s\n", d)
	}
}

// childArgs are the flags every child run inherits.
var childArgs []string

// runChild measures one run in a fresh process of this binary.
func runChild(self string, n int64, stage string) (result, error) {
	cmd := exec.Command(self, append([]string{"-child", strconv.FormatInt(n, 10), "-stage", stage}, childArgs...)...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return result{}, fmt.Errorf("child: %w", err)
	}
	var r result
	if err := json.Unmarshal(out, &r); err != nil {
		return result{}, fmt.Errorf("child output: %w", err)
	}
	return r, nil
}

// measure runs the engine over n synthetic events: stage "all" is the whole
// pipeline writing the Timesketch agent lines to io.Discard, stage "detect"
// stops after the built-in detections (detections are counted as findings).
func measure(c *corpus, n int64, stage, rulesDir string) (result, error) {
	ctx := context.Background()
	var rs *sigma.Ruleset
	var loadSec float64
	if rulesDir != "" {
		var err error
		if rs, err = sigma.Load(rulesDir, sigma.Options{}); err != nil {
			return result{}, err
		}
		loadSec = rs.LoadTime.Seconds()
	}
	in := &countingReader{r: newStream(c, n)}
	var st pipeline.Stats
	w := report.NewAgentWriter(io.Discard, report.FormLines)
	start := time.Now()
	events := source.Read(ctx, in, source.Options{Name: "bench"})
	if stage == "detect" {
		det := detect.New(detect.Options{})
		var sg *sigma.Engine
		if rs != nil {
			sg = rs.NewEngine()
		}
		count := func(detect.Detection) { st.Findings.Add(1) }
		for ev, err := range events {
			if err != nil {
				st.Errors.Add(1)
				continue
			}
			st.Events.Add(1)
			det.Observe(ev, count)
			if sg != nil {
				sg.Observe(ev, count)
			}
		}
		det.Flush(count)
		if sg != nil {
			sg.Flush(count)
		}
		return finish(start, in, &st, rs, loadSec), nil
	}
	for f, err := range pipeline.Run(ctx, events, pipeline.Options{Sigma: rs}, &st) {
		if err != nil {
			continue // bad lines are counted in st.Errors
		}
		if err := w.WriteFinding(f); err != nil {
			return result{}, err
		}
	}
	if err := w.Close(); err != nil {
		return result{}, err
	}
	return finish(start, in, &st, rs, loadSec), nil
}

func finish(start time.Time, in *countingReader, st *pipeline.Stats, rs *sigma.Ruleset, loadSec float64) result {
	el := time.Since(start).Seconds()
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	r := result{
		Events: st.Events.Load(), Bytes: in.n, Findings: st.Findings.Load(), BadLines: st.Errors.Load(),
		Seconds: el, MaxRSSKB: ru.Maxrss, LiveHeap: ms.HeapAlloc, LoadSec: loadSec,
	}
	if rs != nil {
		r.Rules = len(rs.Rules)
	}
	return r
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	c.n += int64(k)
	return k, err
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
