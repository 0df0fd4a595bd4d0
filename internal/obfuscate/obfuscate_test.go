package obfuscate

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
)

func preserve() *Mapper { return New(Options{PreserveStructure: true}) }

func TestTextKinds(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		// addresses
		{"ipv4 internal", "src 10.0.0.5 dst 10.0.0.6", "src [INTERNAL-IP-1] dst [INTERNAL-IP-2]"},
		{"ipv4 external with port", "to 8.8.8.8:53.", "to [EXTERNAL-IP-1]:53."},
		{"ipv4 in url", "http://192.168.1.1/admin", "http://[INTERNAL-IP-1]/admin"},
		{"ipv4 cidr", "allow 172.16.0.0/12", "allow [INTERNAL-IP-1]/12"},
		{"ipv4 range", "10.0.0.1-10.0.0.9", "[INTERNAL-IP-1]-[INTERNAL-IP-2]"},
		{"cgnat", "peer 100.64.1.1", "peer [INTERNAL-IP-1]"},
		{"ipv6 compressed", "from 2001:db8::1 port 22", "from [EXTERNAL-IP-1] port 22"},
		{"ipv6 full", "addr 2001:0db8:0000:0000:0000:ff00:0042:8329 up", "addr [EXTERNAL-IP-1] up"},
		{"ipv6 bracket port", "[fe80::1]:443", "[[INTERNAL-IP-1]]:443"},
		{"ipv6 loopback", "listen ::1", "listen [INTERNAL-IP-1]"},
		{"ipv6 ula", "fd00::5 ok", "[INTERNAL-IP-1] ok"},
		{"ipv6 zone", "fe80::1%eth0", "[INTERNAL-IP-1]%eth0"},
		{"ipv4-mapped dotted", "::ffff:10.1.2.3 and 10.1.2.3", "::ffff:[INTERNAL-IP-1] and [INTERNAL-IP-1]"},
		{"ipv4-mapped hex", "::ffff:a01:203", "[INTERNAL-IP-1]"},
		{"unspecified kept", "bind 0.0.0.0:80 and :: and 255.255.255.255 and 224.0.0.251", "bind 0.0.0.0:80 and :: and 255.255.255.255 and 224.0.0.251"},
		// users
		{"user kv", "user=alice uid=0", "user=[USER-1] uid=0"},
		{"USER kv", "USER=root ; COMMAND=/bin/sh", "USER=[USER-1] ; COMMAND=/bin/sh"},
		{"user word", "Invalid user bob from 10.0.0.1", "Invalid user [USER-1] from [INTERNAL-IP-1]"},
		{"for from", "Accepted publickey for carol from 10.0.0.1", "Accepted publickey for [USER-1] from [INTERNAL-IP-1]"},
		{"home linux", "open /home/dave/.bashrc", "open /home/[USER-1]/.bashrc"},
		{"home mac", "/Users/erin/Desktop", "/Users/[USER-1]/Desktop"},
		{"home windows", `C:\Users\frank\AppData`, `C:\Users\[USER-1]\AppData`},
		{"home windows escaped", `C:\\Users\\frank\\AppData`, `C:\\Users\\[USER-1]\\AppData`},
		{"home public kept", `C:\Users\Public\x`, `C:\Users\Public\x`},
		{"domain user", `logon CORP\grace ok`, `logon CORP\[USER-1] ok`},
		{"domain user escaped", `"CORP\\grace"`, `"CORP\\[USER-1]"`},
		{"json user", `{"TargetUserName":"heidi"}`, `{"TargetUserName":"[USER-1]"}`},
		{"nested json user", `{"user":{"id":"1000","name":"ivan"}}`, `{"user":{"id":"1000","name":"[USER-1]"}}`},
		{"evtx account name", "Account Name:\t\tjudy\n", "Account Name:\t\t[USER-1]\n"},
		{"sudo", "sudo:   kim : TTY=pts/0", "sudo:   [USER-1] : TTY=pts/0"},
		{"user sweep", "user=leo wrote /var/mail/leo", "user=[USER-1] wrote /var/mail/[USER-1]"},
		{"numeric user kept", "user=1000", "user=1000"},
		// hosts
		{"fqdn", "resolve evil.example.com now", "resolve [HOST-1] now"},
		{"fqdn internal", "DC01.corp.local", "[HOST-1]"},
		{"host kv single label", "hostname=web01 host: db02", "hostname=[HOST-1] host: [HOST-2]"},
		{"host kv port", "Host: intranet:8080", "Host: [HOST-1]:8080"},
		{"url host single label", "http://intranet/login", "http://[HOST-1]/login"},
		{"container name", "container_name=nginx", "container_name=[HOST-1]"},
		{"three labels ambiguous tld", "get.example.sh", "[HOST-1]"},
		// containers
		{"container kv", "container_id=3f4e5d6c7b8a", "container_id=[CONTAINER-1]"},
		{"container dotted key", `"container.id":"3f4e5d6c7b8a"`, `"container.id":"[CONTAINER-1]"`},
		{"docker url", "docker://" + strings.Repeat("ab", 32), "docker://[CONTAINER-1]"},
		{"cri-o url", "cri-o://" + strings.Repeat("cd", 32), "cri-o://[CONTAINER-1]"},
		{"cgroup", "/docker/" + strings.Repeat("0f", 32) + "/x", "/docker/[CONTAINER-1]/x"},
		// emails
		{"email", "mail to a.b+c@example.org.", "mail to [EMAIL-1]."},
		// secrets
		{"aws key id", "AKIAIOSFODNN7EXAMPLE", "[REDACTED]"},
		{"aws secret", "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG", "aws_secret_access_key = [REDACTED]"},
		{"bearer", "Authorization: Bearer abc.def-123", "Authorization: Bearer [REDACTED]"},
		{"basic quoted", `"Authorization": "Basic dXNlcjpwYXNz"`, `"Authorization": "Basic [REDACTED]"`},
		{"jwt", "t=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln x", "t=[REDACTED] x"},
		{"pem", "a -----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY----- b", "a [REDACTED] b"},
		{"pem escaped", `"-----BEGIN EC PRIVATE KEY-----\nMHc\n-----END EC PRIVATE KEY-----"`, `"[REDACTED]"`},
		{"pem truncated", "k=-----BEGIN RSA PRIVATE KEY-----\nMIIE", "k=[REDACTED]"},
		{"public key kept", "-----BEGIN CERTIFICATE-----", "-----BEGIN CERTIFICATE-----"},
		{"url password", "ftp://mia:pw1@files.example.com/", "ftp://[USER-1]:[REDACTED]@[HOST-1]/"},
		{"password pairs", `password=a1 passwd:b2 pwd="c 3" secret='d4' token=e5 api_key=f6 apikey=g7 access_token=h8 client_secret=i9`,
			`password=[REDACTED] passwd:[REDACTED] pwd="[REDACTED]" secret='[REDACTED]' token=[REDACTED] api_key=[REDACTED] apikey=[REDACTED] access_token=[REDACTED] client_secret=[REDACTED]`},
		{"password json", `{"Password": "p w"}`, `{"Password": "[REDACTED]"}`},
		{"password escaped json", `\"password\":\"x1\"`, `\"password\":\"[REDACTED]\"`},
		{"github", "ghp_abcdefghijklmnopqrstuvwxyz0123456789 gho_abcdefghijklmnopqrstuvwxyz0123456789 ghs_abcdefghijklmnopqrstuvwxyz0123456789", "[REDACTED] [REDACTED] [REDACTED]"},
		{"github pat", "github_pat_11AAAAAAA0abcdefghijklmnop_qrstuvwxyz", "[REDACTED]"},
		{"slack", "xoxp-1234-5678-abcdefghij", "[REDACTED]"},
		{"google", "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY", "[REDACTED]"},
		{"stripe", "sk_live_4eC39HqLyjWDarjtT1zdp7dc", "[REDACTED]"},
		{"openai", "sk-abcdefghijklmnopqrstuvwx", "[REDACTED]"},
		{"key high entropy", "signing key Zx9Qw8Er7Ty6Ui5Op4As3Df2", "signing key [REDACTED]"},
		{"key low entropy kept", "key=enabled keyboard=us", "key=enabled keyboard=us"},
		{"mysql -p", "mysql -uroot -pS3cr3t db", "mysql -uroot -p[REDACTED] db"},
		{"mkdir -p kept", "mkdir -p /tmp/x", "mkdir -p /tmp/x"},
		{"--password", "tool --password hunter2 --password=hunter3", "tool --password [REDACTED] --password=[REDACTED]"},
		{"sudo pwd is a path", "PWD=/srv/app ;", "PWD=/srv/app ;"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := preserve().Text(tt.in); got != tt.want {
				t.Errorf("Text(%q)\n got  %q\n want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestTextUnchanged lists text that looks like a sensitive value but is not.
func TestTextUnchanged(t *testing.T) {
	for _, in := range []string{
		"a.exe", "libc.so.6", "config.yaml", "install.sh", "setup.py", "archive.zip",
		"version 1.2.3", "1.2.3.4.5", "999.1.1.1", "01.2.3.4", "oid 1.3.6.1.4.1.311",
		"10:00:01", "12:34:56.789", "2024-01-12T10:00:01Z", "00:1a:2b:3c:4d:5e",
		"std::vector", "dead::beef",
		"sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		"uuid 123e4567-e89b-12d3-a456-426614174000",
		"hash 3f4e5d6c7b8a", // 12 hex outside a container context
		"org.apache.commons.io", "java.lang.String", "com.example.app.Main", "System.Net",
		"os.path.join(a, b)", "e.g. this", "Windows 10.0.19041.1",
		`HKLM\SOFTWARE\Microsoft`, `C:\Windows\System32\cmd.exe`, `NT AUTHORITY\SYSTEM`,
		"the user is logged in", "Failed password for invalid user from",
		"user=- user=<NA>", "key=value", "mkdir -p /tmp", "ssh -p 2222",
	} {
		if got := preserve().Text(in); got != in {
			t.Errorf("Text(%q) = %q, want unchanged", in, got)
		}
	}
}

func TestConsistentWithinMapper(t *testing.T) {
	m := preserve()
	a := m.Text("from 10.0.0.5 user=alice")
	b := m.Text("to 10.0.0.7 and 10.0.0.5, /home/alice")
	if a != "from [INTERNAL-IP-1] user=[USER-1]" {
		t.Errorf("first text: %q", a)
	}
	if b != "to [INTERNAL-IP-2] and [INTERNAL-IP-1], /home/[USER-1]" {
		t.Errorf("second text: %q", b)
	}
}

func TestIndependentMappers(t *testing.T) {
	m1, m2 := preserve(), preserve()
	m1.Text("10.0.0.1")
	if got := m2.Text("10.0.0.2"); got != "[INTERNAL-IP-1]" {
		t.Errorf("second mapper numbered from the first: %q", got)
	}
	if got := m2.Restore("[INTERNAL-IP-1]"); got != "10.0.0.2" {
		t.Errorf("m2 restore = %q", got)
	}
	if got := m1.Restore("[INTERNAL-IP-1]"); got != "10.0.0.1" {
		t.Errorf("m1 restore = %q", got)
	}
}

func TestRestoreRoundTrip(t *testing.T) {
	m := preserve()
	for _, s := range []string{
		"Accepted password for alice from 10.0.0.5 port 22 ssh2",
		`{"Computer":"DC01.corp.local","TargetUserName":"bob","IpAddress":"::ffff:10.1.2.3"}`,
		"curl http://carol@files.example.com:8080/x from [2001:db8::7]:443 container_id=3f4e5d6c7b8a",
		"mail dave@example.org via mx.example.org",
	} {
		out := m.Text(s)
		if out == s {
			t.Errorf("nothing replaced in %q", s)
		}
		if back := m.Restore(out); back != s {
			t.Errorf("Restore(Text(s)) = %q, want %q", back, s)
		}
	}
	if got := m.Restore("[USER-99] and [NOT-A-TOKEN] [INTERNAL-IP-1"); got != "[USER-99] and [NOT-A-TOKEN] [INTERNAL-IP-1" {
		t.Errorf("unknown tokens changed: %q", got)
	}
}

func TestSecretsNeverKept(t *testing.T) {
	m := preserve()
	secrets := []string{"hunter2", "AKIAIOSFODNN7EXAMPLE", "S3cr3tPw"}
	out := m.Text("password=hunter2 key AKIAIOSFODNN7EXAMPLE https://u:S3cr3tPw@example.com/")
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("secret %q in output %q", s, out)
		}
		if strings.Contains(m.Restore(out), s) {
			t.Errorf("secret %q restored", s)
		}
	}
	var sawSecret bool
	for _, e := range m.Table() {
		for _, s := range secrets {
			if strings.Contains(e.Value, s) {
				t.Errorf("secret %q in table entry %+v", s, e)
			}
		}
		if e.Kind == KindSecret {
			sawSecret = true
			if e.Token != Redacted || e.Value != NotKept {
				t.Errorf("secret entry = %+v", e)
			}
		}
	}
	if !sawSecret {
		t.Error("no secret entry in the table")
	}
	if got := m.Summary()["secret"]; got != 3 {
		t.Errorf("Summary secret = %d, want 3", got)
	}
}

func TestPreserveStructureFalse(t *testing.T) {
	m := New(Options{})
	got := m.Text("conn  10.0.0.5:443 ->\t\t[fe80::1]:22\n\n  user=alice")
	want := "conn [INTERNAL-IP-1] -> [INTERNAL-IP-2]\nuser=[USER-1]"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := m.Text("a  b"); got != "a b" {
		t.Errorf("collapse without tokens: %q", got)
	}
	if got := m.Restore("[INTERNAL-IP-1]"); got != "10.0.0.5" {
		t.Errorf("port must not be part of the value: %q", got)
	}
}

func TestFields(t *testing.T) {
	m := preserve()
	in := map[string]string{
		"user.name":       "alice",
		"TargetUserName":  "CORP\\bob",
		"SubjectUserName": "carol@example.com",
		"hostname":        "web01",
		"Computer":        "DC01.corp.local",
		"container.name":  "nginx",
		"k8s.pod.name":    "api-7d9f",
		"container.id":    "3f4e5d6c7b8a",
		"host":            "10.0.0.9",
		"db_password":     "x y z",
		"proc.cmdline":    "ssh dave@10.0.0.9",
		"proc.name":       "bash",
		"Authorization":   "Bearer abcdefgh12345678",
		"evt.type":        "",
		"encryption_key":  "Zx9Qw8Er7Ty6Ui5Op4As3Df2",
		"keyboard_layout": "us",
	}
	got := m.Fields(in)
	want := map[string]string{
		"user.name":       "[USER-3]",
		"TargetUserName":  "CORP\\[USER-1]",
		"SubjectUserName": "[EMAIL-1]",
		"hostname":        "[HOST-3]",
		"Computer":        "[HOST-1]",
		"container.name":  "[HOST-2]",
		"k8s.pod.name":    "[HOST-4]",
		"container.id":    "[CONTAINER-1]",
		"host":            "[INTERNAL-IP-1]",
		"db_password":     "[REDACTED]",
		"proc.cmdline":    "ssh [USER-2]@[INTERNAL-IP-1]",
		"proc.name":       "bash",
		"Authorization":   "Bearer [REDACTED]",
		"evt.type":        "",
		"encryption_key":  "[REDACTED]",
		"keyboard_layout": "us",
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("Fields[%q] = %q, want %q", k, got[k], w)
		}
	}
	if len(got) != len(in) {
		t.Errorf("len = %d, want %d", len(got), len(in))
	}
	if in["user.name"] != "alice" {
		t.Error("input map modified")
	}
	if m.Fields(nil) != nil {
		t.Error("Fields(nil) != nil")
	}
}

func TestKnownValues(t *testing.T) {
	m := New(Options{PreserveStructure: true, KnownUsers: []string{"svc_backup"}, KnownHosts: []string{"jumpbox"}})
	got := m.Text("svc_backup connected to jumpbox; svc_backup2 and jumpboxes are others")
	want := "[USER-1] connected to [HOST-1]; svc_backup2 and jumpboxes are others"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestInternalNets(t *testing.T) {
	m := New(Options{PreserveStructure: true, InternalNets: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}})
	if got := m.Text("203.0.113.5 10.0.0.1"); got != "[INTERNAL-IP-1] [EXTERNAL-IP-1]" {
		t.Errorf("custom nets: %q", got)
	}
}

func TestMaxTokens(t *testing.T) {
	m := New(Options{PreserveStructure: true, MaxTokens: 2})
	got := m.Text("10.0.0.1 10.0.0.2 10.0.0.3 10.0.0.1")
	if got != "[INTERNAL-IP-1] [INTERNAL-IP-2] [REDACTED] [INTERNAL-IP-1]" {
		t.Errorf("got %q", got)
	}
	if s := m.Summary(); s["internal-ip"] != 2 || s["overflow"] != 1 {
		t.Errorf("Summary = %v", s)
	}
	if got := m.Restore(got); strings.Contains(got, "10.0.0.3") {
		t.Errorf("overflow value restored: %q", got)
	}
}

func TestTableSorted(t *testing.T) {
	m := preserve()
	var b strings.Builder
	for i := 1; i <= 12; i++ {
		fmt.Fprintf(&b, "10.0.0.%d user=u%03d ", i, i)
	}
	m.Text(b.String())
	tab := m.Table()
	if len(tab) != 24 {
		t.Fatalf("len(Table) = %d, want 24", len(tab))
	}
	if tab[0].Token != "[INTERNAL-IP-1]" || tab[1].Token != "[INTERNAL-IP-2]" || tab[11].Token != "[INTERNAL-IP-12]" {
		t.Errorf("not sorted by number: %v", tab[:12])
	}
	if tab[9].Value != "10.0.0.10" || tab[9].Kind != KindInternalIP {
		t.Errorf("tab[9] = %+v", tab[9])
	}
	if tab[12].Token != "[USER-1]" || tab[12].Value != "u001" {
		t.Errorf("tab[12] = %+v", tab[12])
	}
	if s := m.Summary(); s["internal-ip"] != 12 || s["user"] != 12 || len(s) != 2 {
		t.Errorf("Summary = %v", s)
	}
}

func TestConcurrent(t *testing.T) {
	m := preserve()
	var wg sync.WaitGroup
	outs := make([][]string, 8)
	for g := range outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				s := fmt.Sprintf("user=u%d from 10.0.%d.%d", i%10, i%10, g)
				outs[g] = append(outs[g], m.Text(s))
				m.Restore(outs[g][len(outs[g])-1])
				m.Table()
				m.Summary()
			}
		}()
	}
	wg.Wait()
	// Every distinct value got exactly one token.
	tab := m.Table()
	seen := map[string]bool{}
	for _, e := range tab {
		k := string(e.Kind) + "/" + e.Value
		if seen[k] {
			t.Errorf("value numbered twice: %s", k)
		}
		seen[k] = true
	}
	if got := m.Summary()["user"]; got != 10 {
		t.Errorf("users = %d, want 10", got)
	}
	for g := range outs {
		for i, o := range outs[g] {
			want := fmt.Sprintf("user=u%d from 10.0.%d.%d", i%10, i%10, g)
			if back := m.Restore(o); back != want {
				t.Fatalf("Restore(%q) = %q, want %q", o, back, want)
			}
		}
	}
}

func TestHighEntropy(t *testing.T) {
	for _, tt := range []struct {
		v    string
		want bool
	}{
		{"Zx9Qw8Er7Ty6Ui5Op4As3Df2", true},
		{"9f86d081884c7d659a2feaa0c55ad015", true},
		{"aaaaaaaaaaaaaaaaaaaaaaa1", false},
		{"enabled", false},
		{"thisisalllowercaseletters", false},
		{"has spaces in it 12345AB", false},
	} {
		if got := highEntropy(tt.v); got != tt.want {
			t.Errorf("highEntropy(%q) = %v, want %v", tt.v, got, tt.want)
		}
	}
}

func TestClassifyKey(t *testing.T) {
	for k, want := range map[string]keyClass{
		"user.name": keyUser, "TargetUserName": keyUser, "SubjectUserName": keyUser, "USER": keyUser,
		"hostname": keyHost, "Computer": keyHost, "container.name": keyHost, "k8s.pod.name": keyHost,
		"container.id": keyContainer, "container_id": keyContainer,
		"password": keySecret, "DB_PASSWORD": keySecret, "client_secret": keySecret, "x-auth-token": keySecret,
		"aws_secret_access_key": keySecret, "--password": keySecret,
		"ssh_key": keyMaybeSecret, "Authorization": keyAuth,
		"user_loginuid": keyNone, "proc.name": keyNone, "tokens": keyNone,
	} {
		if got := classifyKey(k); got != want {
			t.Errorf("classifyKey(%q) = %d, want %d", k, got, want)
		}
	}
	if !slices.Contains(DefaultInternalNets(), netip.MustParsePrefix("fc00::/7")) {
		t.Error("ULA missing from defaults")
	}
}
