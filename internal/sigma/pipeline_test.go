package sigma_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loupe-sec/loupe/internal/finding"
	"github.com/loupe-sec/loupe/internal/pipeline"
	"github.com/loupe-sec/loupe/internal/sigma"
	"github.com/loupe-sec/loupe/internal/source"
)

// Through the pipeline, Sigma matches become findings with the rule's
// attribution and ATT&CK question, and a correlation decided at the end
// of the stream (no triggering event) still carries its evidence.
func TestPipelineFindings(t *testing.T) {
	rs := sigma.Parse("p.yml", []byte(`title: Logon
name: logon
author: loupe tests
logsource: {product: windows, service: security}
detection: {sel: {EventID: 4624}, condition: sel}
---
title: Few Logons Per Account
id: 0e9a3c52-1d7f-4a7e-9b4a-8d8f6b1c2a10
author: loupe tests
tags: [attack.initial-access, attack.t1078]
correlation: {type: event_count, rules: [logon], group-by: [TargetUserName], timespan: 1h, condition: {lte: 1}}
level: low
---
title: Whoami
id: 3c2d1e0f-6b5a-4c3d-8e9f-0a1b2c3d4e5f
author: loupe tests
references: [https://example.org/whoami]
tags: [attack.discovery, attack.t1033]
logsource: {product: windows, category: process_creation}
detection: {sel: {CommandLine|contains: whoami}, condition: sel}
level: medium
`), sigma.Options{})
	if len(rs.Problems) > 0 {
		t.Fatal(rs.Problems)
	}
	f, err := os.Open(filepath.Join("..", "demo", "corpus", "evtx.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	events := source.Read(context.Background(), f, source.Options{Name: "evtx.jsonl"})
	var whoami, few []*finding.Finding
	for fd, err := range pipeline.Run(context.Background(), events, pipeline.Options{Sigma: rs}, nil) {
		if err != nil {
			t.Fatal(err)
		}
		switch fd.Rule.Title {
		case "Whoami":
			whoami = append(whoami, fd)
		case "Few Logons Per Account":
			few = append(few, fd)
		}
	}
	if len(whoami) != 1 {
		t.Fatalf("%d whoami findings", len(whoami))
	}
	w := whoami[0]
	if w.Source != "sigma" || w.Rule.Link != "https://example.org/whoami" || w.Rule.Author != "loupe tests" || w.TacticID != "TA0007" ||
		len(w.Techniques) != 1 || w.Techniques[0].ID != "T1033" || w.Priority != finding.Medium || len(w.Evidence) != 1 ||
		!strings.Contains(w.Conclusion, `Sigma rule "Whoami"`) {
		t.Errorf("whoami finding: %+v", w)
	}
	if len(few) == 0 {
		t.Fatal("no window-close correlation finding")
	}
	for _, fd := range few {
		if len(fd.Evidence) == 0 || fd.Count != 1 || fd.TacticID != "TA0001" {
			t.Errorf("correlation finding: %+v", fd)
		}
	}
}
