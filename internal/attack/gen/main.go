// Command gen writes the ATT&CK technique table of package attack
// (table_gen.go) from techniques.tsv or, with -stix, from a MITRE ATT&CK
// STIX 2.1 bundle such as enterprise-attack.json, in which case it also
// rewrites techniques.tsv so the two never disagree.
//
// Run it from internal/attack (go generate does this):
//
//	go run ./gen [-tsv techniques.tsv] [-stix enterprise-attack.json] [-out table_gen.go]
package main

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"go/format"
	"io"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strings"
)

// killChain lists the Enterprise tactic short names in ATT&CK order; the
// table keeps each technique's tactics in this order.
var killChain = []string{
	"reconnaissance", "resource-development", "initial-access", "execution",
	"persistence", "privilege-escalation", "defense-evasion", "credential-access",
	"discovery", "lateral-movement", "collection", "command-and-control",
	"exfiltration", "impact",
}

var idPattern = regexp.MustCompile(`^T[0-9]{4}(\.[0-9]{3})?$`)

// row is one technique of the table.
type row struct {
	ID      string
	Name    string
	Tactics []string // short names, kill-chain order
}

func main() {
	tsvPath := flag.String("tsv", "techniques.tsv", "curated technique table (read, or written with -stix)")
	stixPath := flag.String("stix", "", "MITRE ATT&CK STIX 2.1 bundle to read instead of the TSV")
	outPath := flag.String("out", "table_gen.go", "Go file to write")
	flag.Parse()
	if err := run(*tsvPath, *stixPath, *outPath); err != nil {
		slog.Error("gen failed", "err", err)
		os.Exit(1)
	}
}

func run(tsvPath, stixPath, outPath string) error {
	var rows []row
	var err error
	if stixPath != "" {
		rows, err = readFile(stixPath, readSTIX)
		if err != nil {
			return err
		}
		var buf bytes.Buffer
		if err := writeTSV(&buf, rows); err != nil {
			return err
		}
		if err := os.WriteFile(tsvPath, buf.Bytes(), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", tsvPath, err)
		}
	} else {
		rows, err = readFile(tsvPath, readTSV)
		if err != nil {
			return err
		}
	}
	src, err := render(rows)
	if err != nil {
		return err
	}
	if err := os.WriteFile(outPath, src, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", outPath, err)
	}
	slog.Info("wrote technique table", "file", outPath, "techniques", len(rows))
	return nil
}

func readFile(path string, read func(io.Reader) ([]row, error)) ([]row, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rows, err := read(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return rows, nil
}

// readTSV reads "id<TAB>name<TAB>tactics" lines; blank lines, lines
// starting with '#' and the header line are skipped.
func readTSV(r io.Reader) ([]row, error) {
	var rows []row
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "id\t") {
			continue
		}
		cols := strings.Split(line, "\t")
		if len(cols) != 3 {
			return nil, fmt.Errorf("line %d: want 3 tab-separated columns, got %d", n, len(cols))
		}
		rw := row{ID: strings.TrimSpace(cols[0]), Name: strings.TrimSpace(cols[1])}
		for t := range strings.SplitSeq(cols[2], ",") {
			rw.Tactics = append(rw.Tactics, strings.TrimSpace(t))
		}
		rows = append(rows, rw)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return normalize(rows)
}

// stixBundle holds the parts of a STIX 2.1 bundle the table needs.
type stixBundle struct {
	Objects []struct {
		Type       string `json:"type"`
		Name       string `json:"name"`
		Revoked    bool   `json:"revoked"`
		Deprecated bool   `json:"x_mitre_deprecated"`
		References []struct {
			SourceName string `json:"source_name"`
			ExternalID string `json:"external_id"`
		} `json:"external_references"`
		Phases []struct {
			KillChain string `json:"kill_chain_name"`
			Phase     string `json:"phase_name"`
		} `json:"kill_chain_phases"`
	} `json:"objects"`
}

// readSTIX reads the attack-pattern objects of an ATT&CK STIX bundle,
// skipping revoked and deprecated ones. Sub-technique names are written
// "Parent: Sub".
func readSTIX(r io.Reader) ([]row, error) {
	var b stixBundle
	if err := json.NewDecoder(r).Decode(&b); err != nil {
		return nil, fmt.Errorf("decode STIX bundle: %w", err)
	}
	var rows []row
	names := map[string]string{}
	for _, o := range b.Objects {
		if o.Type != "attack-pattern" || o.Revoked || o.Deprecated {
			continue
		}
		var rw row
		for _, ref := range o.References {
			if ref.SourceName == "mitre-attack" {
				rw.ID = ref.ExternalID
			}
		}
		for _, p := range o.Phases {
			if p.KillChain == "mitre-attack" {
				rw.Tactics = append(rw.Tactics, p.Phase)
			}
		}
		if rw.ID == "" || len(rw.Tactics) == 0 {
			continue // not an Enterprise technique
		}
		rw.Name = strings.TrimSpace(o.Name)
		names[rw.ID] = rw.Name
		rows = append(rows, rw)
	}
	for i := range rows {
		parent, _, sub := strings.Cut(rows[i].ID, ".")
		if !sub {
			continue
		}
		pn, ok := names[parent]
		if !ok {
			return nil, fmt.Errorf("sub-technique %s has no parent %s in the bundle", rows[i].ID, parent)
		}
		rows[i].Name = pn + ": " + rows[i].Name
	}
	return normalize(rows)
}

// normalize validates rows, orders each row's tactics along the kill chain
// and sorts rows by id.
func normalize(rows []row) ([]row, error) {
	seen := map[string]bool{}
	var errs []error
	for i := range rows {
		rw := &rows[i]
		if !idPattern.MatchString(rw.ID) {
			errs = append(errs, fmt.Errorf("bad technique id %q", rw.ID))
		}
		if seen[rw.ID] {
			errs = append(errs, fmt.Errorf("duplicate technique id %s", rw.ID))
		}
		seen[rw.ID] = true
		if rw.Name == "" || strings.ContainsAny(rw.Name, "\t\n") {
			errs = append(errs, fmt.Errorf("%s: bad name %q", rw.ID, rw.Name))
		}
		if len(rw.Tactics) == 0 {
			errs = append(errs, fmt.Errorf("%s: no tactic", rw.ID))
		}
		for _, t := range rw.Tactics {
			if !slices.Contains(killChain, t) {
				errs = append(errs, fmt.Errorf("%s: unknown tactic %q", rw.ID, t))
			}
		}
		slices.SortFunc(rw.Tactics, func(a, b string) int {
			return cmp.Compare(slices.Index(killChain, a), slices.Index(killChain, b))
		})
		rw.Tactics = slices.Compact(rw.Tactics)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	slices.SortFunc(rows, func(a, b row) int { return cmp.Compare(a.ID, b.ID) })
	return rows, nil
}

const tsvHeader = `# MITRE ATT&CK Enterprise techniques used by loupe (ATT&CK v15 names).
# Derived from MITRE ATT&CK(R), (c) The MITRE Corporation; reproduced under
# the ATT&CK terms of use. See README.md. Regenerate table_gen.go with
# ` + "`go generate ./internal/attack`" + ` after editing.
id	name	tactics
`

func writeTSV(w io.Writer, rows []row) error {
	bw := bufio.NewWriter(w)
	bw.WriteString(tsvHeader)
	for _, rw := range rows {
		fmt.Fprintf(bw, "%s\t%s\t%s\n", rw.ID, rw.Name, strings.Join(rw.Tactics, ","))
	}
	return bw.Flush()
}

// render returns the gofmt'ed source of table_gen.go.
func render(rows []row) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("// Code generated by go run ./gen from techniques.tsv; DO NOT EDIT.\n")
	b.WriteString("// Derived from MITRE ATT&CK®, © The MITRE Corporation (see README.md).\n\n")
	b.WriteString("package attack\n\n")
	b.WriteString("var techniques = [...]technique{\n")
	for _, rw := range rows {
		fmt.Fprintf(&b, "{%q, %q, %q},\n", rw.ID, rw.Name, strings.Join(rw.Tactics, ","))
	}
	b.WriteString("}\n")
	src, err := format.Source(b.Bytes())
	if err != nil {
		return nil, fmt.Errorf("gofmt generated table: %w", err)
	}
	return src, nil
}
