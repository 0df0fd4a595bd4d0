package obfuscate

import (
	"net/netip"
	"strings"
	"testing"
)

func addSeeds(f *testing.F) {
	for _, l := range readTricky(f) {
		f.Add(l.Text)
	}
	for _, s := range []string{"", "[", "[USER-1]", "::", "1.2.3.4:", "a@b.cc", `\\`, "-----BEGIN PRIVATE KEY-----", "user=", "eyJa.eyJb."} {
		f.Add(s)
	}
}

// ipv4Words returns the dotted quads in s that parse as IPv4 addresses and
// stand alone (not inside a longer dotted or alphanumeric run).
func ipv4Words(s string) []string {
	var out []string
	for k := 0; k < len(s); k++ {
		if !isDigit(s[k]) || (k > 0 && (isAlnum(s[k-1]) || s[k-1] == '.')) {
			continue
		}
		if e := ipv4End(s, k); e > 0 {
			if _, err := netip.ParseAddr(s[k:e]); err == nil {
				out = append(out, s[k:e])
			}
			k = e
		}
	}
	return out
}

func FuzzText(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, s string) {
		m := New(Options{PreserveStructure: true})
		out := m.Text(s)
		// Every address the Mapper numbered is gone from the output.
		for _, e := range m.Table() {
			if (e.Kind == KindInternalIP || e.Kind == KindExternalIP) && strings.Contains(e.Value, ".") {
				for _, w := range ipv4Words(out) {
					if w == e.Value {
						t.Fatalf("classified address %q still in output %q", e.Value, out)
					}
				}
			}
		}
		back := m.Restore(out)
		if !strings.Contains(s, "[") && m.Summary()["secret"] == 0 && back != s {
			t.Fatalf("Restore(Text(%q)) = %q (via %q)", s, back, out)
		}
		New(Options{}).Text(s)
	})
}

func FuzzFields(f *testing.F) {
	f.Add("user.name", "alice", "proc.cmdline", "ssh bob@10.0.0.1")
	f.Add("TargetUserName", `CORP\bob`, "password", "x")
	f.Add("container.id", "3f4e5d6c7b8a", "Authorization", "Bearer ")
	f.Add("host", "[fe80::1]:22", "k8s.pod.name", "")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		m := New(Options{PreserveStructure: true})
		in := map[string]string{k1: v1, k2: v2}
		out := m.Fields(in)
		if len(out) != len(in) {
			t.Fatalf("len(out) = %d, want %d", len(out), len(in))
		}
		for k, v := range out {
			if classifyKey(k) == keySecret && in[k] != "" && v != Redacted {
				t.Fatalf("secret key %q kept value %q", k, v)
			}
			m.Restore(v)
		}
	})
}
