// Package attack is loupe's embedded table of MITRE ATT&CK® Enterprise
// tactics and techniques.
//
// The technique table (table_gen.go) is generated from techniques.tsv, a
// curated list of ATT&CK Enterprise techniques and sub-techniques with their
// tactics, written with the ATT&CK v15 names. The generator can also read an
// official ATT&CK STIX 2.1 bundle (enterprise-attack.json); it then rewrites
// techniques.tsv too, so both stay in step:
//
//	go generate ./internal/attack                           # from techniques.tsv
//	cd internal/attack && go run ./gen -stix enterprise-attack.json
//
// The data is derived from MITRE ATT&CK®, © The MITRE Corporation, and is
// reproduced under the ATT&CK terms of use, which require this attribution.
// See README.md in this directory.
package attack

//go:generate go run ./gen

import (
	"strings"

	"github.com/loupe-sec/loupe/internal/finding"
)

// Tactic is one ATT&CK Enterprise tactic.
type Tactic struct {
	ID    string // TA0006
	Name  string // Credential Access
	Short string // credential-access, the STIX kill-chain phase name
}

// tactics is the Enterprise kill chain in ATT&CK's order.
var tactics = [...]Tactic{
	{"TA0043", "Reconnaissance", "reconnaissance"},
	{"TA0042", "Resource Development", "resource-development"},
	{"TA0001", "Initial Access", "initial-access"},
	{"TA0002", "Execution", "execution"},
	{"TA0003", "Persistence", "persistence"},
	{"TA0004", "Privilege Escalation", "privilege-escalation"},
	{"TA0005", "Defense Evasion", "defense-evasion"},
	{"TA0006", "Credential Access", "credential-access"},
	{"TA0007", "Discovery", "discovery"},
	{"TA0008", "Lateral Movement", "lateral-movement"},
	{"TA0009", "Collection", "collection"},
	{"TA0011", "Command and Control", "command-and-control"},
	{"TA0010", "Exfiltration", "exfiltration"},
	{"TA0040", "Impact", "impact"},
}

// technique is one generated table row; tactics holds comma-separated
// tactic short names in kill-chain order.
type technique struct {
	id, name, tactics string
}

// resolved is a table row with its tactics looked up once at start.
type resolved struct {
	tech    finding.Technique
	tactics []Tactic
}

var (
	byID map[string]*resolved
	rows []resolved
)

func init() {
	rows = make([]resolved, len(techniques))
	byID = make(map[string]*resolved, len(techniques))
	for i, t := range techniques {
		r := &rows[i]
		r.tech = finding.Technique{ID: t.id, Name: t.name}
		for short := range strings.SplitSeq(t.tactics, ",") {
			ta, ok := TacticByName(short)
			if !ok {
				panic("attack: technique " + t.id + " has unknown tactic " + short)
			}
			r.tactics = append(r.tactics, ta)
		}
		r.tactics = r.tactics[:len(r.tactics):len(r.tactics)]
		byID[t.id] = r
	}
}

// Tactics returns the Enterprise tactics in kill-chain order.
func Tactics() []Tactic {
	out := make([]Tactic, len(tactics))
	copy(out, tactics[:])
	return out
}

// TacticByName finds a tactic by its name ("Credential Access"), short
// name ("credential-access", "credential_access"), id ("TA0006") or Falco
// tag ("mitre_credential_access"), ignoring case.
func TacticByName(s string) (Tactic, bool) {
	s = strings.TrimSpace(s)
	if len(s) > 6 && strings.EqualFold(s[:6], "mitre_") {
		s = s[6:]
	}
	for _, t := range tactics {
		if strings.EqualFold(s, t.ID) || sameWords(s, t.Short) {
			return t, true
		}
	}
	return Tactic{}, false
}

// sameWords compares s with a hyphenated short name, ignoring case and
// treating space, underscore and hyphen alike. "Command and Control"
// matches "command-and-control".
func sameWords(s, short string) bool {
	if len(s) != len(short) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '_':
			c = '-'
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		if c != short[i] {
			return false
		}
	}
	return true
}

// Lookup finds a technique or sub-technique by id ("T1110.001", any case)
// and returns it with its tactics in kill-chain order. It does not
// allocate; the returned tactic slice is shared and must not be modified.
func Lookup(id string) (finding.Technique, []Tactic, bool) {
	if len(id) == 0 || len(id) > 16 {
		return finding.Technique{}, nil, false
	}
	r, ok := byID[id]
	if !ok {
		var b [16]byte
		n := copy(b[:], id)
		for i := range n {
			if 'a' <= b[i] && b[i] <= 'z' {
				b[i] -= 'a' - 'A'
			}
		}
		r, ok = byID[string(b[:n])]
		if !ok {
			return finding.Technique{}, nil, false
		}
	}
	return r.tech, r.tactics, true
}

// Order is the kill-chain position of a tactic given in any form
// TacticByName accepts; unknown tactics sort last.
func Order(tacticName string) int {
	t, ok := TacticByName(tacticName)
	if !ok {
		return len(tactics)
	}
	for i := range tactics {
		if tactics[i].ID == t.ID {
			return i
		}
	}
	return len(tactics)
}

// URL is the ATT&CK web page of a technique id ("T1543.003" →
// https://attack.mitre.org/techniques/T1543/003/).
func URL(id string) string {
	return "https://attack.mitre.org/techniques/" + strings.Replace(strings.ToUpper(id), ".", "/", 1) + "/"
}

// IsTechniqueID reports whether s has the form of a technique or
// sub-technique id: T1234 or T1234.567 (known to the table or not).
func IsTechniqueID(s string) bool {
	if len(s) != 5 && len(s) != 9 || s[0] != 'T' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if i == 5 {
			if s[i] != '.' {
				return false
			}
			continue
		}
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
