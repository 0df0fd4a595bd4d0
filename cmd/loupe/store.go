package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/loupe-sec/loupe/internal/config"
	"github.com/loupe-sec/loupe/internal/detect"
	"github.com/loupe-sec/loupe/internal/event"
	"github.com/loupe-sec/loupe/internal/finding"
	"github.com/loupe-sec/loupe/internal/jobs"
	"github.com/loupe-sec/loupe/internal/pipeline"
	"github.com/loupe-sec/loupe/internal/reason"
	"github.com/loupe-sec/loupe/internal/reason/deep"
	"github.com/loupe-sec/loupe/internal/server"
	"github.com/loupe-sec/loupe/internal/sigma"
	"github.com/loupe-sec/loupe/internal/store"
)

// storeDSN picks the findings store: the explicit dsn, else store_dsn
// ($LOUPE_STORE_DSN), else loupe.db in data_dir ($LOUPE_DATA_DIR), else
// store's default place. It also returns the data directory (uploads).
func storeDSN(cfg config.Config, dsn string) (string, string, error) {
	if dsn == "" {
		dsn = cfg.StoreDSN
	}
	dataDir := cfg.DataDir
	if dataDir == "" {
		def, err := store.DefaultPath()
		if err != nil {
			return "", "", err
		}
		dataDir = filepath.Dir(def)
	}
	if dsn == "" {
		dsn = filepath.Join(dataDir, "loupe.db")
	}
	return dsn, dataDir, nil
}

// openStore opens and migrates the findings store named by dsn.
func openStore(ctx context.Context, dsn string) (*store.Store, error) {
	st, err := store.Open(ctx, dsn)
	if err != nil {
		return nil, err
	}
	if err := st.Migrate(ctx); err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}

// looksLikeDSN tells a store DSN given after a bare --store from an input
// file name.
func looksLikeDSN(s string) bool {
	for _, p := range []string{"postgres://", "postgresql://", "sqlite:"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// storeFlag is --store: a bare --store uses the default store, --store=DSN
// names one (see joinStoreDSN for the spaced form).
type storeFlag struct {
	set bool
	dsn string
}

func (f *storeFlag) String() string {
	if f == nil || !f.set {
		return ""
	}
	return store.Redact(f.dsn)
}

func (f *storeFlag) Set(v string) error {
	f.set = true
	if v == "true" {
		v = ""
	} else if v == "false" {
		f.set = false
		v = ""
	}
	f.dsn = v
	return nil
}

func (f *storeFlag) IsBoolFlag() bool { return true }

// startInvestigations opens the findings store, resumes or fails the jobs
// a previous process left unfinished and enables the investigation API on
// srv. When the default store cannot be opened, serve goes on without
// investigations (the API answers 503); a configured store_dsn that fails
// is an error. The returned func stops the jobs (they resume at the next
// start) and closes the store.
func startInvestigations(ctx context.Context, cfg config.Config, srv *server.Server, logger *slog.Logger,
	rules func() *sigma.Ruleset, analyst *deep.Analyst) (func(), error) {
	dsn, dataDir, err := storeDSN(cfg, "")
	if err != nil {
		logger.Warn("investigations disabled: no data directory", "err", err)
		return func() {}, nil
	}
	st, err := openStore(ctx, dsn)
	if err != nil {
		if cfg.StoreDSN != "" {
			return nil, err
		}
		logger.Warn("investigations disabled: cannot open the default store", "dsn", store.Redact(dsn), "err", err)
		return func() {}, nil
	}
	base := pipeline.Options{
		Detect: detect.Options{MaxTracked: cfg.MaxTracked},
		Reason: reason.Options{MaxEvidence: cfg.MaxEvidence, MaxGroups: cfg.MaxGroups},
		Deep:   analyst, // llm.reasoning: each job's run ends with the model's reading
	}
	owner, err := instanceID(dataDir)
	if err != nil {
		st.Close()
		return nil, err
	}
	mgr, err := jobs.New(ctx, jobs.Config{
		Store:   st,
		Owner:   owner,
		MaxJobs: cfg.MaxJobs,
		Options: func() pipeline.Options { o := base; o.Sigma = rules(); return o },
		Observe: func(st *pipeline.Stats) (func(*finding.Finding), func(error)) {
			r := srv.Metrics().Start("job", st) // loupe_runs_* and findings by priority at /metrics
			return r.Finding, r.End
		},
		Logger: logger,
	})
	if err != nil {
		st.Close()
		return nil, err
	}
	stop := func() { mgr.Close(); st.Close() }
	rec, err := mgr.Recover(ctx)
	if err != nil {
		stop()
		return nil, fmt.Errorf("resume interrupted investigations: %w", err)
	}
	if err := srv.SetInvestigations(st, mgr, dataDir, cfg.Roots()); err != nil {
		stop()
		return nil, err
	}
	logger.Info("investigations enabled", "store", store.Redact(dsn), "dialect", st.Dialect(), "data_dir", dataDir,
		"instance", owner, "resumed", len(rec.Resumed), "failed_interrupted", len(rec.Failed),
		"left_to_other_instances", len(rec.Skipped), "max_jobs", cfg.MaxJobs)
	// Keep this instance's jobs fresh for other servers on the same store,
	// and take over the jobs of a server that stopped.
	go mgr.Supervise(ctx, func(rec jobs.Recovery, err error) {
		if err != nil {
			logger.Warn("taking over stopped investigations failed", "err", err)
			return
		}
		logger.Info("took over investigations of a stopped instance", "resumed", rec.Resumed, "failed_interrupted", rec.Failed)
	})
	return stop, nil
}

// instanceID names this server among those sharing a store: a random id
// kept in the data directory, so a restarted server resumes its own jobs
// at once (servers sharing a data directory share the id).
func instanceID(dataDir string) (string, error) {
	p := filepath.Join(dataDir, "instance-id")
	if b, err := os.ReadFile(p); err == nil {
		if id := strings.TrimSpace(string(b)); id != "" {
			return id, nil
		}
	}
	var r [8]byte
	if _, err := rand.Read(r[:]); err != nil {
		return "", err
	}
	id := "loupe-" + hex.EncodeToString(r[:])
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", fmt.Errorf("data directory: %w", err)
	}
	if err := os.WriteFile(p, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("instance id: %w", err)
	}
	return id, nil
}

// bindStoreFlag registers --store on the analyze flags.
func bindStoreFlag(fs *flag.FlagSet) *storeFlag {
	f := &storeFlag{}
	fs.Var(f, "store", "also write the run to the findings store as an investigation and print its id;\n"+
		"--store=DSN (postgres://…, sqlite:PATH) names the store, else $LOUPE_STORE_DSN, else loupe.db in --data-dir")
	return f
}

// joinStoreDSN turns "--store DSN" into "--store=DSN" when DSN starts
// with postgres://, postgresql:// or sqlite: (a bare --store is a boolean
// flag, so the flag package would take DSN for an input file).
func joinStoreDSN(args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...)
		}
		if (a == "--store" || a == "-store") && i+1 < len(args) && looksLikeDSN(args[i+1]) {
			out = append(out, a+"="+args[i+1])
			i++
			continue
		}
		out = append(out, a)
	}
	return out
}

// analysisRecord writes one loupe analyze run to the store.
type analysisRecord struct {
	db     *store.Store
	dsn    string
	inv    store.Investigation
	stderr io.Writer
}

// begin opens the store and creates the run's investigation; nil without
// --store.
func (f *storeFlag) begin(ctx context.Context, cfg config.Config, inputs []input, demo bool, stderr io.Writer) (*analysisRecord, error) {
	if !f.set {
		return nil, nil
	}
	dsn, _, err := storeDSN(cfg, f.dsn)
	if err != nil {
		return nil, err
	}
	db, err := openStore(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("--store: %w", err)
	}
	src := store.Source{Kind: "stdin"}
	var names []string
	for _, in := range inputs {
		names = append(names, in.name)
	}
	switch {
	case demo:
		src.Kind = "demo"
	case len(names) > 0 && !(len(names) == 1 && names[0] == "stdin"):
		var paths []string
		for _, n := range names {
			if abs, err := filepath.Abs(n); err == nil && n != "stdin" {
				n = abs
			}
			paths = append(paths, n)
		}
		b, _ := json.Marshal(jobs.FileParams{Paths: paths})
		src = store.Source{Kind: jobs.KindFile, Params: b}
	}
	opts, _ := json.Marshal(jobs.Options{MaxEvidence: cfg.MaxEvidence, MaxGroups: cfg.MaxGroups,
		MaxTracked: cfg.MaxTracked, Origin: "cli"})
	inv, err := db.CreateInvestigation(ctx, store.Investigation{
		Name:    "loupe analyze " + strings.Join(names, " "),
		Source:  src,
		Options: opts,
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("--store: %w", err)
	}
	return &analysisRecord{db: db, dsn: dsn, inv: inv, stderr: stderr}, nil
}

// run is pipeline.Run writing the findings to the store as they come.
func (a *analysisRecord) run(ctx context.Context, events iter.Seq2[*event.Event, error], opt pipeline.Options,
	st *pipeline.Stats) iter.Seq2[*finding.Finding, error] {
	return jobs.Record(ctx, a.db, a.inv.ID, events, jobs.RecordOptions{Pipeline: opt}, st)
}

// end records how the run ended, prints the investigation id and closes
// the store. It is a no-op on a nil record.
func (a *analysisRecord) end(runErr error) {
	if a == nil {
		return
	}
	defer a.db.Close()
	status := store.Done
	switch {
	case runErr == nil:
	case errors.Is(runErr, context.Canceled):
		status, runErr = store.Cancelled, errors.New("interrupted")
	default:
		status = store.Failed
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.db.Finish(ctx, a.inv.ID, status, runErr); err != nil {
		fmt.Fprintf(a.stderr, "loupe analyze: --store: %v\n", err)
		return
	}
	fmt.Fprintf(a.stderr, "loupe analyze: investigation %s (%s) stored in %s\n", a.inv.ID, status, store.Redact(a.dsn))
}
