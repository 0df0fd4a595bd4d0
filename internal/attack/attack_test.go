package attack

import (
	"regexp"
	"strings"
	"testing"
)

var idRe = regexp.MustCompile(`^T[0-9]{4}(\.[0-9]{3})?$`)

func TestTableSanity(t *testing.T) {
	if len(techniques) < 250 {
		t.Fatalf("table has %d techniques, want at least 250", len(techniques))
	}
	seen := map[string]bool{}
	for i, tc := range techniques {
		if !idRe.MatchString(tc.id) {
			t.Errorf("bad id %q", tc.id)
		}
		if seen[tc.id] {
			t.Errorf("duplicate id %s", tc.id)
		}
		seen[tc.id] = true
		if i > 0 && techniques[i-1].id >= tc.id {
			t.Errorf("table not sorted at %s", tc.id)
		}
		_, tas, ok := Lookup(tc.id)
		if !ok || len(tas) == 0 {
			t.Errorf("%s: no tactic", tc.id)
		}
		for j := 1; j < len(tas); j++ {
			if Order(tas[j-1].Name) >= Order(tas[j].Name) {
				t.Errorf("%s: tactics not in kill-chain order: %v", tc.id, tas)
			}
		}
		if parent, _, sub := strings.Cut(tc.id, "."); sub {
			p, _, ok := Lookup(parent)
			if !ok {
				t.Errorf("%s: parent %s missing", tc.id, parent)
				continue
			}
			if !strings.HasPrefix(tc.name, p.Name+": ") {
				t.Errorf("%s: name %q does not start with parent name %q", tc.id, tc.name, p.Name)
			}
		} else if strings.Contains(tc.name, ": ") {
			t.Errorf("%s: technique name %q looks like a sub-technique name", tc.id, tc.name)
		}
	}
}

// Techniques the detections and Falco's default rules refer to.
var required = strings.Fields(`T1059 T1059.004 T1068 T1070 T1070.002 T1070.003 T1552 T1552.001 T1555 T1105
T1611 T1610 T1046 T1082 T1083 T1036 T1098 T1098.004 T1543 T1543.002 T1053 T1053.003 T1548 T1548.001
T1547 T1565 T1485 T1486 T1496 T1499 T1041 T1048 T1071 T1090 T1095 T1571 T1219 T1021 T1021.004 T1078
T1110 T1133 T1190 T1203 T1204 T1525 T1562 T1562.001 T1562.006 T1574 T1574.006 T1556 T1003 T1003.001
T1003.002 T1003.003 T1003.008 T1040 T1057 T1069 T1087 T1018 T1016 T1049 T1033 T1007 T1135 T1222
T1222.002 T1027 T1140 T1055 T1014 T1037 T1136 T1136.001 T1136.002 T1531 T1489 T1490 T1529 T1560
T1005 T1119 T1114 T1113 T1056 T1047 T1053.005 T1543.003 T1569.002 T1021.001 T1021.002 T1021.006
T1550.002 T1558.003 T1110.001 T1110.003 T1218 T1218.005 T1218.010 T1218.011 T1197 T1059.001
T1059.003 T1059.005 T1027.010 T1070.001 T1112 T1546.003 T1546.008 T1547.001 T1558 T1134 T1106
T1012 T1482 T1087.002 T1003.006 T1207 T1484 T1505.003 T1039 T1074 T1567 T1020 T1562.003`)

func TestRequiredTechniques(t *testing.T) {
	for _, id := range required {
		if _, _, ok := Lookup(id); !ok {
			t.Errorf("technique %s missing from table", id)
		}
	}
}

func TestLookup(t *testing.T) {
	tech, tas, ok := Lookup("t1110.001")
	if !ok || tech.ID != "T1110.001" || tech.Name != "Brute Force: Password Guessing" {
		t.Fatalf("Lookup(t1110.001) = %+v, %v", tech, ok)
	}
	if len(tas) != 1 || tas[0].ID != "TA0006" {
		t.Fatalf("tactics = %+v, want Credential Access", tas)
	}
	_, tas, _ = Lookup("T1078")
	var names []string
	for _, ta := range tas {
		names = append(names, ta.Name)
	}
	if got := strings.Join(names, ","); got != "Initial Access,Persistence,Privilege Escalation,Defense Evasion" {
		t.Errorf("T1078 tactics = %s", got)
	}
	for _, bad := range []string{"", "T9999", "T1110.999", "T1110.001x", strings.Repeat("T", 40)} {
		if _, _, ok := Lookup(bad); ok {
			t.Errorf("Lookup(%q) succeeded", bad)
		}
	}
	if n := testing.AllocsPerRun(100, func() { Lookup("t1543.003") }); n != 0 {
		t.Errorf("Lookup allocates %v times", n)
	}
}

func TestTacticByName(t *testing.T) {
	for _, in := range []string{"Credential Access", "credential-access", "credential_access", "TA0006", "ta0006", "mitre_credential_access", "MITRE_CREDENTIAL_ACCESS", " Credential Access "} {
		ta, ok := TacticByName(in)
		if !ok || ta.ID != "TA0006" || ta.Name != "Credential Access" || ta.Short != "credential-access" {
			t.Errorf("TacticByName(%q) = %+v, %v", in, ta, ok)
		}
	}
	if ta, ok := TacticByName("mitre_command_and_control"); !ok || ta.ID != "TA0011" {
		t.Errorf("command and control: %+v %v", ta, ok)
	}
	for _, bad := range []string{"", "credential", "mitre_", "TA9999", "credential access!"} {
		if _, ok := TacticByName(bad); ok {
			t.Errorf("TacticByName(%q) succeeded", bad)
		}
	}
}

func TestTacticsAndOrder(t *testing.T) {
	ts := Tactics()
	if len(ts) != 14 || ts[0].ID != "TA0043" || ts[13].ID != "TA0040" || ts[11].Name != "Command and Control" {
		t.Fatalf("unexpected tactics %+v", ts)
	}
	ts[0].Name = "changed"
	if Tactics()[0].Name != "Reconnaissance" {
		t.Error("Tactics returns shared storage")
	}
	if !(Order("Initial Access") < Order("execution") && Order("TA0011") < Order("Exfiltration") && Order("Exfiltration") < Order("impact")) {
		t.Error("Order does not follow the kill chain")
	}
	if Order("nonsense") != 14 {
		t.Errorf("unknown tactic order = %d", Order("nonsense"))
	}
}

func TestURL(t *testing.T) {
	if got := URL("t1543.003"); got != "https://attack.mitre.org/techniques/T1543/003/" {
		t.Errorf("URL = %s", got)
	}
	if got := URL("T1110"); got != "https://attack.mitre.org/techniques/T1110/" {
		t.Errorf("URL = %s", got)
	}
}

func BenchmarkLookup(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		Lookup("t1003.001")
	}
}

func TestIsTechniqueID(t *testing.T) {
	for s, want := range map[string]bool{
		"T1059": true, "T1059.001": true, "T9999": true,
		"": false, "T105": false, "t1059": false, "T1059.01": false, "T1059-001": false, "T10a9": false, "T1059.0011": false,
	} {
		if got := IsTechniqueID(s); got != want {
			t.Errorf("IsTechniqueID(%q) = %v, want %v", s, got, want)
		}
	}
}
