package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTableUpToDate regenerates the table from techniques.tsv and compares
// it with the committed table_gen.go.
func TestTableUpToDate(t *testing.T) {
	out := filepath.Join(t.TempDir(), "table_gen.go")
	if err := run("../techniques.tsv", "", out); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("../table_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("table_gen.go is out of date with techniques.tsv; run go generate ./internal/attack")
	}
}

func TestTSVRoundTrip(t *testing.T) {
	f, err := os.Open("../techniques.tsv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := readTSV(f)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := writeTSV(&buf, rows); err != nil {
		t.Fatal(err)
	}
	again, err := readTSV(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != len(rows) {
		t.Fatalf("round trip lost rows: %d != %d", len(again), len(rows))
	}
	for i := range rows {
		if rows[i].ID != again[i].ID || rows[i].Name != again[i].Name || strings.Join(rows[i].Tactics, ",") != strings.Join(again[i].Tactics, ",") {
			t.Fatalf("row %d differs: %+v vs %+v", i, rows[i], again[i])
		}
	}
}

func TestReadTSVErrors(t *testing.T) {
	for name, in := range map[string]string{
		"columns":   "T1110\tBrute Force\n",
		"id":        "X1110\tBrute Force\tcredential-access\n",
		"tactic":    "T1110\tBrute Force\tcredential-theft\n",
		"duplicate": "T1110\tBrute Force\tcredential-access\nT1110\tBrute Force\tcredential-access\n",
		"no tactic": "T1110\tBrute Force\t\n",
	} {
		if _, err := readTSV(strings.NewReader(in)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

const bundle = `{"type":"bundle","id":"bundle--1","objects":[
 {"type":"x-mitre-tactic","name":"Credential Access"},
 {"type":"attack-pattern","name":"Password Guessing","x_mitre_is_subtechnique":true,
  "external_references":[{"source_name":"mitre-attack","external_id":"T1110.001","url":"https://attack.mitre.org/techniques/T1110/001"}],
  "kill_chain_phases":[{"kill_chain_name":"mitre-attack","phase_name":"credential-access"}]},
 {"type":"attack-pattern","name":"Brute Force",
  "external_references":[{"source_name":"capec","external_id":"CAPEC-49"},{"source_name":"mitre-attack","external_id":"T1110"}],
  "kill_chain_phases":[{"kill_chain_name":"mitre-attack","phase_name":"credential-access"}]},
 {"type":"attack-pattern","name":"Valid Accounts",
  "external_references":[{"source_name":"mitre-attack","external_id":"T1078"}],
  "kill_chain_phases":[{"kill_chain_name":"mitre-attack","phase_name":"privilege-escalation"},{"kill_chain_name":"mitre-attack","phase_name":"initial-access"},{"kill_chain_name":"mitre-attack","phase_name":"defense-evasion"},{"kill_chain_name":"mitre-attack","phase_name":"persistence"}]},
 {"type":"attack-pattern","name":"Old Thing","revoked":true,
  "external_references":[{"source_name":"mitre-attack","external_id":"T1000"}],
  "kill_chain_phases":[{"kill_chain_name":"mitre-attack","phase_name":"execution"}]},
 {"type":"attack-pattern","name":"Deprecated Thing","x_mitre_deprecated":true,
  "external_references":[{"source_name":"mitre-attack","external_id":"T1001"}],
  "kill_chain_phases":[{"kill_chain_name":"mitre-attack","phase_name":"execution"}]},
 {"type":"attack-pattern","name":"Mobile Thing",
  "external_references":[{"source_name":"mitre-mobile-attack","external_id":"T1400"}],
  "kill_chain_phases":[{"kill_chain_name":"mitre-mobile-attack","phase_name":"persistence"}]}
]}`

func TestReadSTIX(t *testing.T) {
	rows, err := readSTIX(strings.NewReader(bundle))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rows {
		got = append(got, r.ID+"|"+r.Name+"|"+strings.Join(r.Tactics, ","))
	}
	want := []string{
		"T1078|Valid Accounts|initial-access,persistence,privilege-escalation,defense-evasion",
		"T1110|Brute Force|credential-access",
		"T1110.001|Brute Force: Password Guessing|credential-access",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestReadSTIXOrphanSubtechnique(t *testing.T) {
	in := `{"objects":[{"type":"attack-pattern","name":"Password Guessing",
	 "external_references":[{"source_name":"mitre-attack","external_id":"T1110.001"}],
	 "kill_chain_phases":[{"kill_chain_name":"mitre-attack","phase_name":"credential-access"}]}]}`
	if _, err := readSTIX(strings.NewReader(in)); err == nil {
		t.Fatal("orphan sub-technique accepted")
	}
}

// TestRunSTIX checks that -stix writes both the Go table and the TSV.
func TestRunSTIX(t *testing.T) {
	dir := t.TempDir()
	stix := filepath.Join(dir, "enterprise-attack.json")
	if err := os.WriteFile(stix, []byte(bundle), 0o644); err != nil {
		t.Fatal(err)
	}
	tsv, out := filepath.Join(dir, "techniques.tsv"), filepath.Join(dir, "table_gen.go")
	if err := run(tsv, stix, out); err != nil {
		t.Fatal(err)
	}
	fromSTIX, _ := os.ReadFile(out)
	out2 := filepath.Join(dir, "again.go")
	if err := run(tsv, "", out2); err != nil {
		t.Fatal(err)
	}
	fromTSV, _ := os.ReadFile(out2)
	if !bytes.Equal(fromSTIX, fromTSV) || !bytes.Contains(fromTSV, []byte(`"Brute Force: Password Guessing"`)) {
		t.Fatalf("STIX and TSV tables differ or are wrong:\n%s", fromSTIX)
	}
}

func FuzzReadTSV(f *testing.F) {
	f.Add("T1110\tBrute Force\tcredential-access\n")
	f.Add("# c\nid\tname\ttactics\nT1078\tValid Accounts\tpersistence,initial-access\n")
	f.Fuzz(func(t *testing.T, in string) {
		rows, err := readTSV(strings.NewReader(in))
		if err != nil {
			return
		}
		if _, err := render(rows); err != nil {
			t.Fatalf("valid rows did not render: %v", err)
		}
	})
}

func FuzzReadSTIX(f *testing.F) {
	f.Add(bundle)
	f.Fuzz(func(t *testing.T, in string) {
		rows, err := readSTIX(strings.NewReader(in))
		if err != nil {
			return
		}
		if _, err := render(rows); err != nil {
			t.Fatalf("valid rows did not render: %v", err)
		}
	})
}
