package source

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

func TestValidJSON(t *testing.T) {
	cases := []string{
		`{}`, `[]`, `""`, `0`, `-0`, `1.5e-3`, `true`, `null`, ` {"a" : [1, 2, {"b": null}] } `,
		`{"p":"C:\\Windows\\System32\\cmd.exe","u":"\u00e9\ud83d\ude00","q":"say \"hi\""}`,
		`{"a":"12345678901234567\"890"}`, `{"long":"` + strings.Repeat("abcdefgh", 20) + `"}`,
		`{`, `}`, `{"a"}`, `{"a":}`, `{"a":1,}`, `[1,]`, `[1 2]`, `01`, `1.`, `.5`, `1e`, `-`, `+1`,
		`NaN`, `{"a":NaN}`, `tru`, `nul`, `"abc`, `"a\x"`, `"\u12"`, "\"a\tb\"", "\"a\x01b\"",
		`{"a":1}{"b":2}`, `{"a":1} x`, `{'a':1}`, "\"\x80\xff\"", `[[[[[[[[[[]]]]]]]]]]`,
		`{"k":"` + strings.Repeat("x", 7) + `\"` + strings.Repeat("y", 9) + `"}`,
		"\"" + strings.Repeat("é", 9) + "\x7f\"", "\"abcdefg\x1f\"",
	}
	for _, c := range cases {
		if got, want := validJSON(c), json.Valid([]byte(c)); got != want {
			t.Errorf("validJSON(%q) = %v, want %v", c, got, want)
		}
	}
	deep := strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1)
	if validJSON(deep) {
		t.Error("nesting deeper than maxDepth must be refused")
	}
}

// FuzzValidJSON checks the validator against encoding/json on any input
// shallower than maxDepth.
func FuzzValidJSON(f *testing.F) {
	for _, s := range []string{`{"a":[1,"x\"y",{"b":null}]}`, `"\u00e9"`, `-1.5E+3`, `{"a":"b\\"}`, "\"\x1f\"", `"abcdefgh\"ijklmnop"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if strings.Count(s, "[")+strings.Count(s, "{") > maxDepth {
			return
		}
		if got, want := validJSON(s), json.Valid([]byte(s)); got != want {
			t.Fatalf("validJSON(%q) = %v, encoding/json says %v", s, got, want)
		}
	})
}

// BenchmarkValidJSON compares the validator with gjson.Valid on a short
// Sysmon record and on a Timesketch record carrying a long xml_string.
func BenchmarkValidJSON(b *testing.B) {
	short := `{"Event":{"System":{"Provider":{"#attributes":{"Name":"Microsoft-Windows-Sysmon"}},"EventID":1,"Channel":"Microsoft-Windows-Sysmon/Operational","Computer":"WS01.acme.local"},"EventData":{"Image":"C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe","CommandLine":"powershell.exe -nop -w hidden -enc SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQAIABOAGUAdAAuAFcAZQBiAEMAbABpAGUAbgB0ACkA","ParentImage":"C:\\Windows\\explorer.exe","User":"ACME\\alice"}}}`
	long := `{"_id":"x","xml_string":"` + strings.Repeat(`<Data Name=\"CommandLine\">C:\\Windows\\system32\\cmd.exe /c whoami</Data>\n`, 40) + `"}`
	for _, c := range []struct{ name, s string }{{"short", short}, {"xml", long}} {
		b.Run(c.name+"/loupe", func(b *testing.B) {
			b.SetBytes(int64(len(c.s)))
			for b.Loop() {
				if !validJSON(c.s) {
					b.Fatal("invalid")
				}
			}
		})
		b.Run(c.name+"/gjson", func(b *testing.B) {
			b.SetBytes(int64(len(c.s)))
			for b.Loop() {
				if !gjson.Valid(c.s) {
					b.Fatal("invalid")
				}
			}
		})
	}
}
