package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/loupe-sec/loupe/internal/config"
	"github.com/loupe-sec/loupe/internal/sigma"
)

const rulesUsage = `Usage:
  loupe rules check [--json] [--strict] [--sigma-mapping FILE] DIR
  loupe rules list [--sigma-mapping FILE] [DIR]
  loupe rules test [--json] [--sigma-mapping FILE] DIR REGRESSION_DIR

check loads every .yml/.yaml Sigma rule under DIR and reports how many
loaded, how many are unsupported per reason, and every rule that did not
load with its reason. Exit code 1 when a file or rule is invalid (bad YAML,
broken detection); unsupported rules (valid Sigma that loupe does not
evaluate, e.g. PCRE-only regular expressions) fail only with --strict.

list prints title, id, level, logsource and author of each loaded rule;
DIR defaults to $LOUPE_RULES.

test replays regression samples laid out as SigmaHQ's regression_data/
(info.yml naming the rule and match_count, the JSON rendering of each
.evtx beside it) against the rules under DIR: each sample's rule must
match as many of its events as match_count says (at least one when it
says nothing). Exit code 1 when a sample misses.
`

// rulesOptions are the Sigma settings of analyze and serve (rules and
// sigma_mapping in the configuration: --rules, LOUPE_RULES, the file).
type rulesOptions struct {
	dir     string
	mapping string
}

func rulesFrom(cfg config.Config) *rulesOptions {
	return &rulesOptions{dir: cfg.Rules, mapping: cfg.SigmaMapping}
}

// load compiles the rule set; nil without error when no directory is set.
func (o *rulesOptions) load(logger *slog.Logger) (*sigma.Ruleset, error) {
	if o.dir == "" {
		return nil, nil
	}
	var opt sigma.Options
	if o.mapping != "" {
		m, err := sigma.LoadMapping(o.mapping)
		if err != nil {
			return nil, err
		}
		opt.Mapping = m
	}
	rs, err := sigma.Load(o.dir, opt)
	if err != nil {
		return nil, err
	}
	loaded, byCat := rs.Counts()
	logger.Info("sigma rules loaded", "dir", o.dir, "files", rs.Files, "loaded", loaded,
		"not_loaded", len(rs.Problems), "invalid", byCat["invalid"], "load_time", rs.LoadTime)
	for _, p := range rs.Problems {
		logger.Debug("sigma rule not loaded", "rule", p.String())
	}
	return rs, nil
}

// watchRules reloads the rule set on every value from hup until ctx ends
// and hands each new set to set. A failed reload keeps the old set.
func watchRules(ctx context.Context, hup <-chan os.Signal, o *rulesOptions, set func(*sigma.Ruleset), logger *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			rs, err := o.load(logger)
			if err != nil {
				logger.Error("sigma rules reload failed; keeping the loaded rules", "err", err)
				continue
			}
			set(rs)
			logger.Info("sigma rules reloaded; streams in flight keep the previous rules")
		}
	}
}

// startRules loads the rules for serve and reloads them on SIGHUP.
func startRules(ctx context.Context, o *rulesOptions, set func(*sigma.Ruleset), logger *slog.Logger) error {
	rs, err := o.load(logger)
	if err != nil {
		return err
	}
	set(rs)
	if o.dir == "" {
		return nil
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		watchRules(ctx, hup, o, set, logger)
	}()
	return nil
}

// rulesCmd runs "loupe rules check|list".
func rulesCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, rulesUsage)
		return exitUsage
	}
	sub, rest := args[0], args[1:]
	fs := flag.NewFlagSet("rules "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(fs.Output(), rulesUsage+"\nFlags:\n"); fs.PrintDefaults() }
	asJSON := fs.Bool("json", false, "check, test: print the report as JSON")
	strict := fs.Bool("strict", false, "check: exit 1 when any rule is unsupported too")
	mapping := fs.String("sigma-mapping", os.Getenv("LOUPE_SIGMA_MAPPING"), "Sigma field mapping and expand placeholders `FILE`")
	switch sub {
	case "check", "list", "test":
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, rulesUsage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "loupe rules: unknown subcommand %q\n\n%s", sub, rulesUsage)
		return exitUsage
	}
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	dir := fs.Arg(0)
	if dir == "" && sub == "list" {
		dir = os.Getenv("LOUPE_RULES")
	}
	if sub == "test" && fs.NArg() != 2 {
		fmt.Fprintf(stderr, "loupe rules test: want a rule directory and a regression data directory\n\n%s", rulesUsage)
		return exitUsage
	}
	if dir == "" || (fs.NArg() > 1 && sub != "test") {
		fmt.Fprintf(stderr, "loupe rules %s: want one rule directory\n\n%s", sub, rulesUsage)
		return exitUsage
	}
	o := &rulesOptions{dir: dir, mapping: *mapping}
	rs, err := o.load(slog.New(slog.DiscardHandler))
	if err != nil {
		fmt.Fprintf(stderr, "loupe rules %s: %v\n", sub, err)
		return exitError
	}
	switch sub {
	case "list":
		return listRules(rs, stdout)
	case "test":
		return testRules(rs, fs.Arg(1), *asJSON, stdout, stderr)
	}
	return checkRules(rs, dir, *asJSON, *strict, stdout)
}

// writeProducts prints loaded and not loaded rules per logsource product.
func writeProducts(w io.Writer, rs *sigma.Ruleset) {
	type count struct{ ok, not int }
	by := map[string]*count{}
	get := func(p string) *count {
		if p == "" {
			p = "(none)"
		}
		if by[p] == nil {
			by[p] = &count{}
		}
		return by[p]
	}
	for _, r := range rs.Rules {
		p := r.Logsource.Product
		if r.Correlation != "" {
			p = "(correlation)"
		}
		get(p).ok++
	}
	for _, p := range rs.Problems {
		get(p.Product).not++
	}
	names := make([]string, 0, len(by))
	for p := range by {
		names = append(names, p)
	}
	sort.Strings(names)
	fmt.Fprintln(w, "  per product:")
	for _, p := range names {
		c := by[p]
		fmt.Fprintf(w, "    %-16s %5d loaded %5d not loaded (%.1f%%)\n", p, c.ok, c.not, 100*float64(c.ok)/float64(c.ok+c.not))
	}
}

func listRules(rs *sigma.Ruleset, stdout io.Writer) int {
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TITLE\tID\tLEVEL\tLOGSOURCE\tAUTHOR")
	for _, r := range rs.Rules {
		ls := r.Logsource.String()
		if r.Correlation != "" {
			ls = "correlation:" + r.Correlation
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", oneLine(r.Title), r.ID, r.Level, ls, oneLine(r.Author))
	}
	tw.Flush()
	return exitOK
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func checkRules(rs *sigma.Ruleset, dir string, asJSON, strict bool, stdout io.Writer) int {
	loaded, byCat := rs.Counts()
	invalid := byCat["invalid"]
	unsupported := len(rs.Problems) - invalid
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(struct {
			Dir         string          `json:"dir"`
			Files       int             `json:"files"`
			Loaded      int             `json:"loaded"`
			Unsupported int             `json:"unsupported"`
			Invalid     int             `json:"invalid"`
			ByReason    map[string]int  `json:"by_reason"`
			Problems    []sigma.Problem `json:"problems"`
			LoadTimeMS  float64         `json:"load_time_ms"`
		}{dir, rs.Files, loaded, unsupported, invalid, byCat, rs.Problems, float64(rs.LoadTime.Microseconds()) / 1000})
	} else {
		total := loaded + len(rs.Problems)
		pct := 100.0
		if total > 0 {
			pct = 100 * float64(loaded) / float64(total)
		}
		fmt.Fprintf(stdout, "%s: %d files, %d rules loaded (%.1f%%), %d unsupported, %d invalid, in %s\n",
			dir, rs.Files, loaded, pct, unsupported, invalid, rs.LoadTime.Round(1000))
		cats := make([]string, 0, len(byCat))
		for c := range byCat {
			cats = append(cats, c)
		}
		sort.Slice(cats, func(i, j int) bool {
			return byCat[cats[i]] > byCat[cats[j]] || (byCat[cats[i]] == byCat[cats[j]] && cats[i] < cats[j])
		})
		for _, c := range cats {
			fmt.Fprintf(stdout, "  %-12s %d\n", c, byCat[c])
		}
		writeProducts(stdout, rs)
		for _, p := range rs.Problems {
			fmt.Fprintln(stdout, p.String())
		}
	}
	if invalid > 0 || (strict && unsupported > 0) {
		return exitError
	}
	return exitOK
}

// testRules replays the regression samples under dir and prints the
// misses and the count.
func testRules(rs *sigma.Ruleset, dir string, asJSON bool, stdout, stderr io.Writer) int {
	rep, err := sigma.RunRegression(rs, dir)
	if err != nil {
		fmt.Fprintf(stderr, "loupe rules test: %v\n", err)
		return exitError
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(struct {
			Passed int `json:"passed"`
			sigma.RegressionReport
		}{rep.Passed(), rep})
	} else {
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		for _, c := range rep.Cases {
			if !c.Passed() {
				fmt.Fprintf(tw, "MISS\t%s\t%s\t%s\t%s\n", c.RuleTitle, c.RuleID, c.Why(), c.Sample)
			}
		}
		tw.Flush()
		for _, s := range rep.Skipped {
			fmt.Fprintln(stdout, "skipped:", s)
		}
		fmt.Fprintf(stdout, "%s: %d of %d samples match their rule as often as they should (%d skipped)\n",
			dir, rep.Passed(), len(rep.Cases), len(rep.Skipped))
	}
	if rep.Passed() < len(rep.Cases) {
		return exitError
	}
	return exitOK
}
