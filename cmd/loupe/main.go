// Command loupe reads security logs, runs detections mapped to MITRE ATT&CK
// and answers investigative questions with conclusions that point at the
// exact events. It runs as a CLI (loupe analyze) or as a Timesketch log
// reasoning agent (loupe serve).
//
// Exit codes: 0 ok, 1 error, 2 usage error, 3 a finding reached --fail-on.
package main

import (
	"fmt"
	"github.com/loupe-sec/loupe/internal/source"
	"io"
	"os"
	"runtime"

	"github.com/loupe-sec/loupe/internal/version"
	"golang.org/x/term"
)

// Exit codes.
const (
	exitOK     = 0
	exitError  = 1
	exitUsage  = 2
	exitFailOn = 3
)

const usage = `loupe — security log reasoning agent

Usage:
  loupe analyze [flags] [FILE...|-]   analyse log files (gzip ok; - = stdin)
  loupe analyze --demo                 analyse the embedded sample intrusion
  loupe serve [flags]                  run the Timesketch agent (POST /analyze_logs)
  loupe rules check|list DIR           load Sigma rules and report what is unsupported
  loupe version                        print the version
  loupe help [COMMAND]                 show help

Run "loupe help analyze" or "loupe help serve" for the flags of a command.

Settings come from defaults < YAML file (--config FILE or $LOUPE_CONFIG) <
LOUPE_* environment variables < flags. The API token is read only from
$LOUPE_TOKEN, $LOUPE_TOKEN_FILE or the config file.

Exit codes: 0 ok, 1 error, 2 usage error, 3 a finding reached --fail-on.
`

func main() {
	if source.RunEVTXWorker() { // started again to parse .evtx chunks in isolation
		return
	}
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// isolateEVTX parses binary event logs in worker processes (this binary,
// started again), so a hostile .evtx costs a worker, not the analysis.
func isolateEVTX(stderr io.Writer) {
	iso, err := source.DefaultIsolation()
	if err != nil {
		fmt.Fprintf(stderr, "loupe: .evtx files will be parsed in this process: %v\n", err)
		return
	}
	source.IsolateEVTX(iso)
}

// run executes one loupe command line and returns the exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "analyze", "analyse":
		isolateEVTX(stderr)
		return analyze(rest, stdin, stdout, stderr)
	case "serve":
		isolateEVTX(stderr)
		return serve(rest, stdout, stderr)
	case "rules":
		return rulesCmd(rest, stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintf(stdout, "loupe %s (%s %s/%s)\n", version.String(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return exitOK
	case "help", "-h", "-help", "--help":
		if len(rest) > 0 {
			switch rest[0] {
			case "analyze", "analyse", "serve":
				return run([]string{rest[0], "-h"}, stdin, stdout, stderr)
			}
		}
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "loupe: unknown command %q\n\n%s", cmd, usage)
	return exitUsage
}

// isTerminal reports whether v is an *os.File (or alike) attached to a terminal.
func isTerminal(v any) bool {
	f, ok := v.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(int(f.Fd()))
}
