package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"iter"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/loupe-sec/loupe/internal/config"
	"github.com/loupe-sec/loupe/internal/demo"
	"github.com/loupe-sec/loupe/internal/detect"
	"github.com/loupe-sec/loupe/internal/event"
	"github.com/loupe-sec/loupe/internal/finding"
	"github.com/loupe-sec/loupe/internal/pipeline"
	"github.com/loupe-sec/loupe/internal/reason"
	"github.com/loupe-sec/loupe/internal/reason/deep"
	"github.com/loupe-sec/loupe/internal/report"
	"github.com/loupe-sec/loupe/internal/source"
)

// maxBadLineMessages caps the bad-line messages printed to stderr; all bad
// lines are still counted.
const maxBadLineMessages = 100

// input is one named log stream.
type input struct {
	name string
	open func() (io.ReadCloser, error)
}

func analyze(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("analyze", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cf := config.Bind(fs, config.Analyze)
	format := fs.String("format", "", "report format: ndjson, json, text or markdown\n(default: from the --output extension, else text on a terminal, else ndjson)")
	var output string
	fs.StringVar(&output, "output", "", "write the report to `FILE` instead of stdout")
	fs.StringVar(&output, "o", "", "shorthand for --output")
	agentForm := fs.String("agent-form", "lines", "ndjson form: lines or summaries (the Timesketch agent forms)")
	failOn := fs.String("fail-on", "", "exit 3 when a finding has at least this `priority`: info, low, medium, high or critical")
	quiet := fs.Bool("quiet", false, "no progress bar and no bad-line messages")
	storeOpt := bindStoreFlag(fs)
	llmOpts := bindLLMFlags(fs, "after the offline analysis, reason over clusters of the events with this language model `provider`: ollama, openai or anthropic (obfuscated summaries, within a call budget; offline findings stand when it fails)")
	useDemo := fs.Bool("demo", false, "analyse the embedded sample intrusion corpus (text report unless --format)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: loupe analyze [flags] [FILE...|-]

Reads every FILE (NDJSON/JSONL, syslog text; gzip detected by its magic) as
one run, so correlations span files; "-" reads stdin. With no FILE, reads
stdin, or the embedded demo corpus when stdin is a terminal. Bad lines are
reported as FILE:LINE: message and skipped.

Exit codes: 0 ok, 1 error, 2 usage error, 3 a finding reached --fail-on.

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(joinStoreDSN(args)); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "loupe analyze: "+format+"\n", a...)
		return exitUsage
	}

	form, err := report.ParseForm(*agentForm)
	if err != nil {
		return usageErr("--agent-form: %v", err)
	}
	threshold := finding.Priority(0)
	if *failOn != "" {
		if threshold, err = finding.ParsePriority(*failOn); err != nil {
			return usageErr("--fail-on: %v", err)
		}
	}
	paths := fs.Args()
	if *useDemo && len(paths) > 0 {
		return usageErr("--demo takes no FILE arguments")
	}
	if len(paths) == 0 && !*useDemo && isTerminal(stdin) {
		*useDemo = true
	}
	switch {
	case *format != "":
	case output != "":
		*format = formatFromExt(output)
	case *useDemo || isTerminal(stdout):
		*format = "text"
	default:
		*format = "ndjson"
	}
	switch *format {
	case "ndjson", "json", "text", "markdown":
	case "md":
		*format = "markdown"
	default:
		return usageErr("--format: %q is not ndjson, json, text or markdown", *format)
	}

	if err := llmOpts.check(); err != nil {
		return usageErr("%v", err)
	}
	cfg, err := config.Load(cf, llmOpts.getenv(os.LookupEnv))
	if err != nil {
		fmt.Fprintf(stderr, "loupe analyze: %v\n", err)
		return exitError
	}
	logger := cfg.Logger(stderr)
	var analyst *deep.Analyst
	if llmOpts.enabled() {
		if analyst, err = newAnalyst(cfg, llmOpts, logger, false, nil); err != nil {
			fmt.Fprintf(stderr, "loupe analyze: --llm: %v\n", err)
			return exitError
		}
	}
	sigmaSet, err := rulesFrom(cfg).load(logger)
	if err != nil {
		fmt.Fprintf(stderr, "loupe analyze: %v\n", err)
		return exitError
	}

	inputs, err := collectInputs(paths, *useDemo, stdin)
	if err != nil {
		fmt.Fprintf(stderr, "loupe analyze: %v\n", err)
		return exitError
	}

	out := stdout
	if output != "" {
		f, err := os.Create(output)
		if err != nil {
			fmt.Fprintf(stderr, "loupe analyze: %v\n", err)
			return exitError
		}
		defer f.Close()
		out = f
	}
	bw := bufio.NewWriter(out)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	record, err := storeOpt.begin(ctx, cfg, inputs, *useDemo, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "loupe analyze: %v\n", err)
		return exitError
	}
	runPipeline := pipeline.Run
	if record != nil {
		runPipeline = record.run // the same run, its findings also committed to the store
	}

	var (
		st       pipeline.Stats
		read     atomic.Int64
		started  = time.Now()
		badShown int
		top      = finding.Info
		anyFound bool
		found    []*finding.Finding
		byPrio   = map[string]int64{}
	)
	prog := newProgress(stderr, &st, &read, started, !*quiet && isTerminal(stderr))
	defer prog.stop()

	var agent *report.AgentWriter
	if *format == "ndjson" {
		agent = report.NewAgentWriter(bw, form)
	}
	opts := pipeline.Options{
		Detect: detect.Options{MaxTracked: cfg.MaxTracked},
		Reason: reason.Options{MaxEvidence: cfg.MaxEvidence, MaxGroups: cfg.MaxGroups},
		Sigma:  sigmaSet,
		Deep:   analyst,
	}
	foundAt := map[string]int{} // finding id → index in found; the LLM stage re-emits updated findings
	events := readInputs(ctx, inputs, cfg.MaxLineBytes, &read)
	var runErr error
	for f, err := range runPipeline(ctx, events, opts, &st) {
		if err != nil {
			var le *inputLineError
			if errors.As(err, &le) {
				if !*quiet && badShown < maxBadLineMessages {
					badShown++
					prog.println(le.Error())
				}
				continue
			}
			runErr = err
			break
		}
		if i, again := foundAt[f.ID]; again {
			if agent == nil {
				found[i] = f // the same finding, with the model's note or fallback mark
				continue
			}
		} else {
			byPrio[f.Priority.String()]++
			if !anyFound || f.Priority > top {
				top = f.Priority
			}
			anyFound = true
			foundAt[f.ID] = len(found)
			if agent == nil {
				found = append(found, f)
				continue
			}
		}
		if err := agent.WriteFinding(f); err == nil {
			err = bw.Flush() // stream: each finding as it comes
			if err != nil {
				runErr = fmt.Errorf("write: %w", err)
				break
			}
		} else {
			runErr = fmt.Errorf("write: %w", err)
			break
		}
	}
	prog.stop()
	record.end(runErr)
	if runErr != nil {
		if errors.Is(runErr, context.Canceled) {
			fmt.Fprintln(stderr, "loupe analyze: interrupted")
		} else {
			fmt.Fprintf(stderr, "loupe analyze: %v\n", runErr)
		}
		if agent != nil {
			agent.Close()
			bw.Flush()
		}
		return exitError
	}

	summary := report.Summary{
		Events:     st.Events.Load(),
		Bytes:      read.Load(),
		BadLines:   st.Errors.Load(),
		Findings:   st.Findings.Load(),
		Started:    started,
		Duration:   time.Since(started),
		ByPriority: byPrio,
	}
	for _, in := range inputs {
		summary.Inputs = append(summary.Inputs, in.name)
	}
	switch *format {
	case "ndjson":
		err = agent.Close()
	case "json":
		err = report.JSON(bw, found, summary)
	case "text":
		err = report.Text(bw, found, summary)
	case "markdown":
		err = report.Markdown(bw, found, summary)
	}
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		fmt.Fprintf(stderr, "loupe analyze: write report: %v\n", err)
		return exitError
	}
	if s := st.LLM.Load(); s != nil && !*quiet {
		fmt.Fprintf(stderr, "loupe analyze: %s\n", s)
	}
	if n := summary.BadLines; n > 0 && !*quiet {
		extra := ""
		if n > int64(badShown) {
			extra = fmt.Sprintf(" (%d not shown)", n-int64(badShown))
		}
		fmt.Fprintf(stderr, "loupe analyze: skipped %d bad line(s)%s\n", n, extra)
	}
	logger.Debug("analysis done", "events", summary.Events, "findings", summary.Findings,
		"bad_lines", summary.BadLines, "bytes", summary.Bytes, "duration", summary.Duration)
	if *failOn != "" && anyFound && top >= threshold {
		return exitFailOn
	}
	return exitOK
}

// formatFromExt picks the report format from an output file name.
func formatFromExt(name string) string {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".md", ".markdown":
		return "markdown"
	case ".json":
		return "json"
	case ".txt":
		return "text"
	}
	return "ndjson"
}

// collectInputs resolves the command-line inputs; missing files are
// reported before any work starts.
func collectInputs(paths []string, useDemo bool, stdin io.Reader) ([]input, error) {
	var inputs []input
	if useDemo {
		for _, name := range demo.Files() {
			inputs = append(inputs, input{name: "demo/" + name, open: func() (io.ReadCloser, error) {
				return demo.FS.Open(name)
			}})
		}
		return inputs, nil
	}
	if len(paths) == 0 {
		paths = []string{"-"}
	}
	stdinUsed := false
	for _, p := range paths {
		if p == "-" {
			if stdinUsed {
				return nil, errors.New(`"-" (stdin) given more than once`)
			}
			stdinUsed = true
			inputs = append(inputs, input{name: "stdin", open: func() (io.ReadCloser, error) {
				return io.NopCloser(stdin), nil
			}})
			continue
		}
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if fi.IsDir() {
			return nil, fmt.Errorf("%s is a directory", p)
		}
		inputs = append(inputs, input{name: p, open: func() (io.ReadCloser, error) { return os.Open(p) }})
	}
	return inputs, nil
}

// inputLineError is a bad line of a named input: "FILE:LINE: message".
type inputLineError struct {
	Input string
	Err   *source.LineError
}

func (e *inputLineError) Error() string {
	return fmt.Sprintf("%s:%d: %v", e.Input, e.Err.Line, e.Err.Err)
}

func (e *inputLineError) Unwrap() error { return e.Err }

// readInputs chains the events of all inputs into one sequence, so one
// pipeline run (and its correlations) spans every file. Bytes read from the
// inputs, before decompression, are added to read. Unlike source.ReadFiles it
// names the input in bad-line errors and counts bytes.
func readInputs(ctx context.Context, inputs []input, maxLine int, read *atomic.Int64) iter.Seq2[*event.Event, error] {
	return func(yield func(*event.Event, error) bool) {
		for _, in := range inputs {
			if !readInput(ctx, in, maxLine, read, yield) {
				return
			}
		}
	}
}

func readInput(ctx context.Context, in input, maxLine int, read *atomic.Int64, yield func(*event.Event, error) bool) bool {
	rc, err := in.open()
	if err != nil {
		yield(nil, err)
		return false
	}
	defer rc.Close()
	// source.Read detects and decompresses gzip by its magic bytes.
	r := &countingReader{r: rc, n: read}
	for ev, err := range source.Read(ctx, r, source.Options{Name: in.name, MaxLineBytes: maxLine}) {
		if err != nil {
			var le *source.LineError
			if errors.As(err, &le) {
				err = &inputLineError{Input: in.name, Err: le}
			} else if !errors.Is(err, context.Canceled) {
				err = fmt.Errorf("%s: %w", in.name, err)
			}
		}
		if !yield(ev, err) {
			return false
		}
	}
	return true
}

// countingReader adds the bytes read through it to n.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}
