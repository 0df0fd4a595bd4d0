//go:build ignore

// logstore-load pushes Falco JSON alerts (one per line) into a log store the
// way SIB stores them, for trying loupe's alert analysis against real data:
//
//	go run scripts/logstore-load.go -stack vm -url "$(scripts/victorialogs.sh start)" testdata/attack/falco.jsonl
//	go run scripts/logstore-load.go -stack grafana -url http://127.0.0.1:3100 testdata/attack/falco.jsonl
//
// -stack vm writes to VictoriaLogs (/insert/jsonline); any other stack to
// Loki's push API. -text ships Falco's output text as the line, as
// falcosidekick does, instead of the whole JSON alert.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/loupe-sec/loupe/internal/logstore"
)

func main() {
	stack := flag.String("stack", "vm", "SIB STACK: vm = VictoriaLogs, anything else = Loki")
	url := flag.String("url", "", "base URL of the log store")
	text := flag.Bool("text", false, "Loki: push the Falco output text instead of the JSON alert")
	flag.Parse()
	if *url == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: go run scripts/logstore-load.go -stack vm|grafana -url URL FILE.jsonl...")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := run(ctx, *stack, *url, *text, flag.Args()); err != nil {
		slog.Error("load failed", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, stack, url string, text bool, files []string) error {
	var events []logstore.Event
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for n := 1; sc.Scan(); n++ {
			ev, err := logstore.FromFalco(sc.Bytes())
			if err != nil {
				f.Close()
				return fmt.Errorf("%s:%d: %w", name, n, err)
			}
			if text {
				ev.Raw = nil
			}
			events = append(events, ev)
		}
		f.Close()
		if err := sc.Err(); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	var err error
	if stack == "vm" {
		err = (&logstore.VictoriaLogs{URL: url}).Push(ctx, events)
	} else {
		err = (&logstore.Loki{URL: url}).Push(ctx, events)
	}
	if err != nil {
		return err
	}
	slog.Info("loaded", "events", len(events), "stack", stack, "url", url)
	return nil
}
