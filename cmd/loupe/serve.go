package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"

	"github.com/loupe-sec/loupe/internal/config"
	"github.com/loupe-sec/loupe/internal/reason/deep"
	"github.com/loupe-sec/loupe/internal/server"
	"github.com/loupe-sec/loupe/internal/sigma"
)

// serve runs the Timesketch agent until SIGINT or SIGTERM.
func serve(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cf := config.Bind(fs, config.Serve)
	llmOpts := bindServeLLMFlags(fs)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: loupe serve [flags]

Serves the Timesketch log reasoning agent: POST /analyze_logs (NDJSON events
in, NDJSON findings out, streamed), the SIB alert analysis (POST /api/analyze,
GET /analyze), investigations (the /api/investigations API and the
/investigations pages), GET /metrics (Prometheus), GET /healthz and GET /. Binds
127.0.0.1:8080 by default. When $LOUPE_TOKEN or $LOUPE_TOKEN_FILE (or token /
token_file in the config file) is set, requests need "Authorization: Bearer
<token>". With --rules, Sigma rules run beside the built-in ones; SIGHUP
reloads them (streams in flight finish with the rules they started with).

Investigations (POST /api/investigations …) run in the background and are
kept in the findings store: $LOUPE_STORE_DSN (postgres://… or sqlite:PATH),
else loupe.db in --data-dir ($LOUPE_DATA_DIR); jobs a crash interrupted are
resumed at start, or marked failed when their source cannot be read again.

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "loupe serve: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	cfg, err := config.Load(cf, os.LookupEnv)
	if err != nil {
		fmt.Fprintf(stderr, "loupe serve: %v\n", err)
		return exitError
	}
	logger := cfg.Logger(stderr)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv := server.New(cfg, logger)
	var analyst *deep.Analyst
	if cfg.LLMReasoning {
		if err := llmOpts.check(); err != nil {
			fmt.Fprintf(stderr, "loupe serve: %v\n", err)
			return exitUsage
		}
		if cfg.LLMProvider == "" || cfg.LLMProvider == "none" {
			fmt.Fprintln(stderr, "loupe serve: llm.reasoning (--llm-reasoning) needs a provider (llm.provider, LOUPE_LLM_PROVIDER or --llm-provider)")
			return exitUsage
		}
		a, err := newAnalyst(cfg, llmOpts, logger, true, srv.Metrics())
		if err != nil {
			fmt.Fprintf(stderr, "loupe serve: llm.reasoning: %v\n", err)
			return exitError
		}
		srv.SetDeep(a)
		analyst = a
	}
	var rules atomic.Pointer[sigma.Ruleset] // for investigation jobs too
	setRules := func(rs *sigma.Ruleset) { srv.SetSigma(rs); rules.Store(rs) }
	if err := startRules(ctx, rulesFrom(cfg), setRules, logger); err != nil {
		fmt.Fprintf(stderr, "loupe serve: %v\n", err)
		return exitError
	}
	closeInvestigations, err := startInvestigations(ctx, cfg, srv, logger, rules.Load, analyst)
	if err != nil {
		fmt.Fprintf(stderr, "loupe serve: %v\n", err)
		return exitError
	}
	defer closeInvestigations()
	if err := srv.ListenAndServe(ctx); err != nil {
		logger.Error("server failed", "err", err)
		return exitError
	}
	return exitOK
}
