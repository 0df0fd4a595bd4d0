package obfuscate

import (
	"strings"
	"testing"
)

// benchCorpus mixes the tricky corpus with ordinary alert lines that carry
// few or no sensitive values, roughly as a real alert stream does.
func benchCorpus(b *testing.B) []string {
	var texts []string
	for _, l := range readTricky(b) {
		texts = append(texts, l.Text)
	}
	plain := []string{
		`{"output":"Shell spawned in a container (proc.name=bash proc.pname=runc evt.type=execve)","priority":"Notice","rule":"Terminal shell in container","time":"2024-01-12T10:00:01.123456789Z"}`,
		`Jan 12 10:00:05 web2 systemd[1]: Started Daily apt download activities; cron job /usr/lib/apt/apt.systemd.daily finished with status 0`,
		`{"EventID":7045,"ServiceName":"PSEXESVC","ImagePath":"%SystemRoot%\\PSEXESVC.exe","ServiceType":"user mode service","StartType":"demand start","AccountName":"LocalSystem"}`,
		`kernel: [12345.678901] audit: type=1400 audit(1705053601.123:456): apparmor="DENIED" operation="open" profile="snap.chromium" name="/proc/1/environ" pid=4242 comm="chrome" requested_mask="r"`,
	}
	for range 4 {
		texts = append(texts, plain...)
	}
	return texts
}

func BenchmarkText(b *testing.B) {
	texts := benchCorpus(b)
	size := 0
	for _, t := range texts {
		size += len(t)
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		m := New(Options{PreserveStructure: true})
		for _, t := range texts {
			m.Text(t)
			n++
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkTextLarge(b *testing.B) {
	big := strings.Join(benchCorpus(b), "\n")
	b.SetBytes(int64(len(big)))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		New(Options{}).Text(big)
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}
