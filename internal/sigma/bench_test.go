package sigma

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/loupe-sec/loupe/internal/detect"
	"github.com/loupe-sec/loupe/internal/event"
)

// sharedSigma is the SigmaHQ snapshot of the project's shared data, or
// $LOUPE_SIGMA_RULES.
func sharedSigma() string {
	if d := os.Getenv("LOUPE_SIGMA_RULES"); d != "" {
		return d
	}
	base := os.Getenv("LOUPE_SHARED")
	if base == "" {
		base = filepath.Join("..", "..", "..", "shared")
	}
	return filepath.Join(base, "data", "sigma")
}

var (
	benchImages = []string{"cmd.exe", "powershell.exe", "pwsh.exe", "rundll32.exe", "regsvr32.exe", "mshta.exe", "wscript.exe",
		"cscript.exe", "certutil.exe", "bitsadmin.exe", "schtasks.exe", "sc.exe", "net.exe", "net1.exe", "reg.exe", "wmic.exe",
		"vssadmin.exe", "wevtutil.exe", "msiexec.exe", "installutil.exe", "msbuild.exe", "curl.exe", "procdump.exe", "whoami.exe",
		"nltest.exe", "dsquery.exe", "adfind.exe", "bcdedit.exe", "fsutil.exe", "forfiles.exe", "odbcconf.exe", "cmstp.exe"}
	benchWords = []string{"-enc", "downloadstring", "invoke-", "bypass", "hidden", "-nop", "iex", "frombase64string", "urlcache",
		"/transfer", "delete", "shadows", "/create", "config", "localgroup", "/add", "save", "hklm\\sam", "minidump", "comsvcs",
		"lsass", "sekurlsa", "/domain_trusts", "trustdump", "recoveryenabled", "deletejournal", "/c ", "javascript:", "vbscript",
		"scrobj.dll", "/i:http", "http://", "https://", "\\appdata\\", "\\temp\\", "\\users\\public\\", ".ps1", ".hta", ".vbs",
		"-accepteula", "process call create", "shadowcopy", "clear-eventlog", "set-mppreference", "add-mppreference", "-exclusionpath"}
	benchParents = []string{"winword.exe", "excel.exe", "powerpnt.exe", "outlook.exe", "explorer.exe", "services.exe", "wmiprvse.exe", "w3wp.exe"}
)

// genRules writes n SigmaHQ-like rules (process creation, Security,
// registry, network) for the benchmark.
func genRules(n int) []byte {
	rnd := rand.New(rand.NewPCG(1, 2))
	pick := func(list []string) string { return list[rnd.IntN(len(list))] }
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString("---\n")
		}
		fmt.Fprintf(&b, "title: Generated Rule %d\nid: 00000000-0000-4000-8000-%012d\nstatus: test\nauthor: loupe bench\n", i, i)
		b.WriteString("tags:\n    - attack.execution\n    - attack.t1059.001\nlevel: medium\n")
		switch k := i % 10; {
		case k < 7: // process creation, the bulk of SigmaHQ's Windows rules
			b.WriteString("logsource:\n    category: process_creation\n    product: windows\ndetection:\n")
			fmt.Fprintf(&b, "    selection_img:\n        - Image|endswith: '\\%s'\n        - OriginalFileName: '%s'\n", pick(benchImages), strings.ToUpper(pick(benchImages)))
			switch rnd.IntN(4) {
			case 0:
				fmt.Fprintf(&b, "    selection_cli:\n        CommandLine|contains|all:\n            - '%s'\n            - '%s'\n", pick(benchWords), pick(benchWords))
			case 1:
				fmt.Fprintf(&b, "    selection_cli:\n        CommandLine|contains:\n            - '%s'\n            - '%s'\n            - '%s'\n", pick(benchWords), pick(benchWords), pick(benchWords))
			case 2:
				fmt.Fprintf(&b, "    selection_cli:\n        CommandLine|windash|contains: ' -%s'\n", strings.TrimLeft(pick(benchWords), "-/ "))
			default:
				fmt.Fprintf(&b, "    selection_cli:\n        ParentImage|endswith: '\\%s'\n", pick(benchParents))
			}
			if rnd.IntN(3) == 0 {
				fmt.Fprintf(&b, "    filter_main:\n        CommandLine|contains: '%s'\n    condition: all of selection_* and not 1 of filter_*\n", pick(benchWords))
			} else {
				b.WriteString("    condition: all of selection_*\n")
			}
		case k == 7:
			b.WriteString("logsource:\n    product: windows\n    service: security\ndetection:\n")
			fmt.Fprintf(&b, "    selection:\n        EventID: %d\n        TargetUserName|endswith: '%s'\n    condition: selection\n",
				[]int{4624, 4625, 4688, 4720, 4732, 4698, 7045, 1102}[rnd.IntN(8)], pick([]string{"$", "admin", "svc_", "guest"}))
		case k == 8:
			b.WriteString("logsource:\n    category: registry_set\n    product: windows\ndetection:\n")
			fmt.Fprintf(&b, "    selection:\n        TargetObject|contains: '\\%s\\'\n        Details|contains: '%s'\n    condition: selection\n",
				pick([]string{"CurrentVersion\\Run", "Services", "Winlogon", "Image File Execution Options"}), pick(benchWords))
		default:
			b.WriteString("logsource:\n    category: network_connection\n    product: windows\ndetection:\n")
			fmt.Fprintf(&b, "    selection:\n        Image|endswith: '\\%s'\n        Initiated: 'true'\n    filter:\n        DestinationIp|cidr:\n            - 10.0.0.0/8\n            - 192.168.0.0/16\n    condition: selection and not filter\n", pick(benchImages))
		}
	}
	return []byte(b.String())
}

// benchEvents are the Windows and Linux test corpora.
func benchEvents(b *testing.B) []*event.Event {
	var evs []*event.Event
	for _, p := range []string{
		filepath.Join("..", "..", "testdata", "attack", "evtx.jsonl"),
		filepath.Join("..", "..", "testdata", "attack", "falco.jsonl"),
		filepath.Join("..", "..", "testdata", "attack", "auth.log"),
		filepath.Join("..", "..", "testdata", "benign", "app.jsonl"),
	} {
		evs = append(evs, readEvents(b, p)...)
	}
	return evs
}

func benchObserve(b *testing.B, rs *Ruleset, evs []*event.Event) {
	x := rs.NewEngine()
	var n int
	emit := func(detect.Detection) { n++ }
	for _, ev := range evs { // warm the scratch space
		x.Observe(ev, emit)
	}
	perEvent := float64(n) / float64(len(evs))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		x.Observe(evs[i%len(evs)], emit)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
	b.ReportMetric(float64(len(rs.Rules)), "rules")
	b.ReportMetric(perEvent, "matches/event")
}

// Several hundred, and a SigmaHQ-sized two thousand, generated rules over
// the test corpora; the rule set's heap size is reported.
func BenchmarkObserveGenerated(b *testing.B) {
	for _, n := range []int{600, 2000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			data := genRules(n)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			rs := Parse("gen.yml", data, Options{})
			runtime.GC()
			runtime.ReadMemStats(&after)
			if len(rs.Problems) > 0 {
				b.Fatal(rs.Problems[0])
			}
			benchObserve(b, rs, benchEvents(b))
			b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "ruleset-MB")
			runtime.KeepAlive(rs)
		})
	}
}

// Only rules that cannot match: the cost of rejecting.
func BenchmarkObserveNoMatch(b *testing.B) {
	rs := Parse("gen.yml", genRules(600), Options{})
	evs := benchEvents(b)
	x := rs.NewEngine()
	var quiet []*event.Event
	for _, ev := range evs {
		hit := false
		x.Observe(ev, func(detect.Detection) { hit = true })
		if !hit {
			quiet = append(quiet, ev)
		}
	}
	benchObserve(b, rs, quiet)
}

func BenchmarkLoadGenerated(b *testing.B) {
	const n = 2000
	dir := b.TempDir()
	for i, doc := range strings.Split(string(genRules(n)), "---\n") {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("r%04d.yml", i)), []byte(doc), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		rs, err := Load(dir, Options{})
		if err != nil || len(rs.Rules) != n {
			b.Fatal(err, len(rs.Rules))
		}
	}
	b.ReportMetric(float64(n*b.N)/time.Since(start).Seconds(), "rules/s")
}

// The SigmaHQ snapshot, when present.
func BenchmarkObserveSigmaHQ(b *testing.B) {
	dir := sharedSigma()
	if _, err := os.Stat(dir); err != nil {
		b.Skipf("no SigmaHQ rules at %s (set LOUPE_SIGMA_RULES or LOUPE_SHARED)", dir)
	}
	rs, err := Load(dir, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("%d rules loaded, %d not, in %s", len(rs.Rules), len(rs.Problems), rs.LoadTime)
	evs := benchEvents(b)
	if p := sharedFile("evtx-attack-samples.jsonl.gz"); p != "" {
		evs = readEvents(b, p) // EVTX-ATTACK-SAMPLES, replayed by the loop
	}
	benchObserve(b, rs, evs)
}

func TestSigmaHQLoad(t *testing.T) {
	dir := sharedSigma()
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("no SigmaHQ rules at %s (set LOUPE_SIGMA_RULES or LOUPE_SHARED)", dir)
	}
	rs, err := Load(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	loaded, cats := rs.Counts()
	t.Logf("%s: %d files, %d loaded, problems %v, in %s", dir, rs.Files, loaded, cats, rs.LoadTime)
	for _, p := range rs.Problems {
		t.Log(p)
	}
	// The bar: 99% of the windows, linux, macos and cloud rules.
	target := func(product string) bool {
		return product == "windows" || product == "linux" || product == "macos" || cloudProducts[product]
	}
	ok, all := 0, 0
	for _, r := range rs.Rules {
		if target(r.Logsource.Product) {
			ok++
			all++
		}
	}
	for _, p := range rs.Problems {
		if target(p.Product) {
			all++
		}
	}
	t.Logf("windows, linux, macos and cloud: %d of %d rules loaded", ok, all)
	if all > 0 && float64(ok) < 0.99*float64(all) {
		t.Errorf("only %d of %d windows/linux/macos/cloud rules loaded", ok, all)
	}
	if rs.LoadTime > 2*time.Second {
		t.Errorf("load took %s", rs.LoadTime)
	}
}
