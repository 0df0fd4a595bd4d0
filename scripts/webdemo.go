//go:build ignore

// webdemo analyses log files into a findings store, one investigation per
// -inv flag, then serves the investigation pages of internal/web on -listen
// until interrupted. scripts/screenshots.sh uses it to render docs/*.png:
//
//	go run scripts/webdemo.go -db /tmp/demo.db -listen 127.0.0.1:8099 \
//	    -inv 'FS01 intrusion=testdata/attack/evtx.jsonl' \
//	    -inv 'web01=testdata/attack/auth.log'
//
// Each -inv is NAME=PATH[,PATH…]; the files are read as one stream, as
// loupe analyze does, with the events read counted per minute for the
// timeline. A path that cannot be read fails its investigation with the
// reason, like a background job would. Without -listen it only writes the
// store. LOUPE_GRAFANA_URL, LOUPE_TIMESKETCH_URL and LOUPE_TIMESKETCH_SKETCH
// configure the evidence links as in loupe serve.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/loupe-sec/loupe/internal/finding"
	"github.com/loupe-sec/loupe/internal/pipeline"
	"github.com/loupe-sec/loupe/internal/source"
	"github.com/loupe-sec/loupe/internal/store"
	"github.com/loupe-sec/loupe/internal/version"
	"github.com/loupe-sec/loupe/internal/web"
)

type invFlags []string

func (f *invFlags) String() string     { return strings.Join(*f, " ") }
func (f *invFlags) Set(s string) error { *f = append(*f, s); return nil }

func main() {
	db := flag.String("db", "", "SQLite file or PostgreSQL DSN of the store")
	listen := flag.String("listen", "", "serve the pages on this address after analysing")
	var invs invFlags
	flag.Var(&invs, "inv", "NAME=PATH[,PATH…]: one investigation (repeatable)")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *db, *listen, invs, log); err != nil {
		log.Error("webdemo", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, dsn, listen string, invs []string, log *slog.Logger) error {
	st, err := store.Open(ctx, dsn)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		return err
	}
	for _, spec := range invs {
		name, paths, ok := strings.Cut(spec, "=")
		if !ok || paths == "" {
			return fmt.Errorf("-inv %q: want NAME=PATH[,PATH…]", spec)
		}
		if err := analyse(ctx, st, name, strings.Split(paths, ","), log); err != nil {
			return err
		}
		time.Sleep(5 * time.Millisecond) // distinct creation times keep the list order stable
	}
	if listen == "" {
		return nil
	}
	h := web.New(st, web.Options{
		Version:          version.String(),
		GrafanaURL:       os.Getenv("LOUPE_GRAFANA_URL"),
		TimesketchURL:    os.Getenv("LOUPE_TIMESKETCH_URL"),
		TimesketchSketch: os.Getenv("LOUPE_TIMESKETCH_SKETCH"),
		Log:              log,
	})
	mux := http.NewServeMux()
	h.Register(mux)
	srv := &http.Server{Addr: listen, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { <-ctx.Done(); srv.Close() }()
	log.Info("serving", "addr", listen)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// analyse runs one investigation over paths to the end and records it.
func analyse(ctx context.Context, st *store.Store, name string, paths []string, log *slog.Logger) error {
	params, _ := json.Marshal(map[string]any{"paths": paths})
	inv, err := st.CreateInvestigation(ctx, store.Investigation{Name: name, Source: store.Source{Kind: "file", Params: params}})
	if err != nil {
		return err
	}
	var (
		stats pipeline.Stats
		vol   store.Volume
		batch []*finding.Finding
		stored int64
		runErr error
	)
	flush := func() error {
		if err := st.AddFindings(ctx, inv.ID, batch); err != nil {
			return err
		}
		stored += int64(len(batch))
		batch = batch[:0]
		if err := st.AddEventVolume(ctx, inv.ID, &vol); err != nil {
			return err
		}
		return st.UpdateProgress(ctx, inv.ID, stats.Events.Load(), stored)
	}
	events := vol.Count(source.ReadFiles(ctx, paths, source.Options{}))
	for f, err := range pipeline.Run(ctx, events, pipeline.Options{}, &stats) {
		if err != nil {
			var le *source.LineError
			if errors.As(err, &le) {
				continue
			}
			runErr = err
			break
		}
		batch = append(batch, f)
		if len(batch) == 500 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	status := store.Done
	if runErr != nil {
		status = store.Failed
	}
	log.Info("investigation", "name", name, "status", status, "events", stats.Events.Load(), "findings", stored, "err", runErr)
	return st.Finish(ctx, inv.ID, status, runErr)
}
