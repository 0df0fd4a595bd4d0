package deep_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/loupe-sec/loupe/internal/llm"
	"github.com/loupe-sec/loupe/internal/llm/llmtest"
	"github.com/loupe-sec/loupe/internal/source"
)

// sensitiveCorpus is a small log corpus full of values that must never
// reach a model: addresses, users, hosts, container ids, e-mails, and
// secrets in command lines and headers, in syslog, Falco and JSON shapes.
func sensitiveCorpus() []byte {
	users := []string{"kmalinowski", "jdoe.admin", "svc_backup", "amelie.roux"}
	hosts := []string{"fin-db-07", "hr-laptop-33", "build-agent-12"}
	ips := []string{"203.0.113.77", "198.51.100.23", "10.20.30.40", "172.16.99.5", "2001:db8::dead:beef"}
	emails := []string{"kasia.malinowska@example.org", "ops-alerts@corp-mail.example.net"}
	containers := []string{"3f4e5d6c7b8a", "9a8b7c6d5e4f"}
	var b strings.Builder
	for i := range 24 {
		u, h, ip := users[i%len(users)], hosts[i%len(hosts)], ips[i%len(ips)]
		fmt.Fprintf(&b, "Mar 19 10:%02d:01 %s sshd[%d]: Failed password for %s from %s port %d ssh2\n", i, h, 4000+i, u, ip, 50000+i)
	}
	fmt.Fprintf(&b, "Mar 19 11:00:01 %s sshd[5001]: Accepted password for %s from %s port 50111 ssh2\n", hosts[0], users[0], ips[0])
	fmt.Fprintf(&b, "Mar 19 11:00:05 %s sudo: %s : TTY=pts/0 ; PWD=/home/%s ; USER=root ; COMMAND=/usr/bin/curl -H 'Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U' https://api.fin-int.example.com/v1/export\n", hosts[0], users[0], users[0])
	fmt.Fprintf(&b, "Mar 19 11:00:09 %s sudo: %s : TTY=pts/1 ; PWD=/home/%s ; USER=root ; COMMAND=/usr/bin/mysql -u dbadmin -pS3cr3tPassw0rdX9 payroll\n", hosts[1], users[1], users[1])
	fmt.Fprintf(&b, "Mar 19 11:00:12 %s backup[77]: uploading with AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY to s3\n", hosts[2])
	fmt.Fprintf(&b, "Mar 19 11:00:15 %s postfix/smtp[88]: mail for %s relayed via %s\n", hosts[2], emails[0], ips[1])
	falco := func(rule, prio, out string, fields map[string]any) {
		line, _ := json.Marshal(map[string]any{"time": "2026-03-19T11:01:00.000000000Z", "rule": rule, "priority": prio,
			"output": out, "output_fields": fields, "hostname": hosts[2], "source": "syscall", "tags": []string{"container", "shell", "mitre_execution"}})
		b.Write(line)
		b.WriteByte('\n')
	}
	for i, c := range containers {
		falco("Terminal shell in container", "Notice",
			fmt.Sprintf("11:01:00.0: Notice A shell was spawned in a container with an attached terminal (user=%s container_id=%s container_name=payments shell=bash parent=runc cmdline=bash -c 'psql --password=Tr0ub4dorX3 -h %s')", users[i], c, ips[2]),
			map[string]any{"user.name": users[i], "container.id": c, "container.name": "payments", "proc.cmdline": "bash -c 'psql --password=Tr0ub4dorX3 -h " + ips[2] + "'", "fd.sip": ips[3]})
	}
	for i, e := range emails {
		line, _ := json.Marshal(map[string]any{"timestamp": fmt.Sprintf("2026-03-19T11:02:%02dZ", i), "host": hosts[i], "user": users[3],
			"src_ip": ips[4], "message": fmt.Sprintf("password reset requested for %s by %s from %s", e, users[3], ips[4])})
		b.Write(line)
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

// rawValues collects, from the corpus itself, every sensitive value in it:
// the parsed events' hosts, users and addresses, and by pattern the
// addresses, e-mails, container ids and secrets in the text.
func rawValues(t *testing.T, data []byte) []string {
	var vals []string
	add := func(v string) {
		v = strings.Trim(v, `'",;`)
		if v != "" && v != "-" && !slices.Contains(vals, v) {
			vals = append(vals, v)
		}
	}
	ctx := context.Background()
	for ev, err := range source.Read(ctx, bytes.NewReader(data), source.Options{Name: "sensitive"}) {
		if err != nil {
			t.Fatal(err)
		}
		add(ev.Host)
		add(ev.User)
		add(ev.TargetUser)
		add(ev.SrcIP)
	}
	patterns := []string{
		`\b(?:[0-9]{1,3}\.){3}[0-9]{1,3}\b`,           // IPv4
		`\b2001:db8:[0-9a-f:]+\b`,                     // IPv6 documentation range
		`[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[a-z]{2,}`, // e-mail
		`container[._]id"?[=:]"?([0-9a-f]{12})`,       // container id
		`AKIA[0-9A-Z]{16}`,                            // AWS access key id
		`AWS_SECRET_ACCESS_KEY=(\S+)`,                 // AWS secret
		`Bearer ([A-Za-z0-9._-]+)`,                    // bearer token
		`-p([A-Za-z0-9]{8,})`,                         // mysql password
		`--password=([A-Za-z0-9]+)`,                   // password option
		`for ([a-z][a-z0-9._]+) from`,                 // sshd user
		`PWD=/home/([a-z0-9._]+)`,                     // home directory user
		`mysql -u ([a-z0-9._]+)`,                      // database account
		`user=([a-z0-9._]+)`,                          // Falco user field
	}
	for _, p := range patterns {
		for _, m := range regexp.MustCompile(p).FindAllStringSubmatch(string(data), -1) {
			add(m[len(m)-1])
		}
	}
	return vals
}

// No raw value of the corpus appears in any request body, in any of the
// forms JSON encoding could give it.
func TestPrivacy(t *testing.T) {
	data := sensitiveCorpus()
	raw := rawValues(t, data)
	t.Logf("%d raw values: %q", len(raw), raw)
	if len(raw) < 20 {
		t.Fatalf("only %d raw values collected: %q", len(raw), raw)
	}
	for _, name := range providers {
		t.Run(name, func(t *testing.T) {
			s := llmtest.New(t, name, func(_ int, c llmtest.Call) llmtest.Reply { return llmtest.Reply{Text: goodAnswer(t, c.Body)} })
			a := analyst(t, name, s.BaseURL(), nil, llm.Limits{})
			got, _, st := run(t, data, a)
			sum := st.LLM.Load()
			calls := s.Calls()
			if len(calls) == 0 || sum.Sent != sum.Clusters || sum.Fallbacks != 0 {
				t.Fatalf("not every cluster reached the capture server: %+v", sum)
			}
			var all strings.Builder
			for _, c := range calls {
				all.Write(c.Body)
				all.WriteByte('\n')
			}
			bodies := all.String()
			for _, v := range raw {
				for _, form := range encodings(v) {
					if i := strings.Index(bodies, form); i >= 0 {
						t.Errorf("raw value %q reached the model: …%s…", v, bodies[max(0, i-60):min(len(bodies), i+len(form)+20)])
						break
					}
				}
			}
			for _, tok := range []string{"[USER-", "[HOST-", "[EXTERNAL-IP-", "[INTERNAL-IP-", "[EMAIL-", "[CONTAINER-", "[REDACTED]"} {
				if !strings.Contains(bodies, tok) {
					t.Errorf("no %s token in the requests: obfuscation did not run as expected", tok)
				}
			}
			// The analyst gets the real values back.
			restored := false
			for _, f := range got {
				if f.Source == "llm" && slices.ContainsFunc(raw, func(v string) bool { return strings.Contains(f.Conclusion, v) }) {
					restored = true
				}
			}
			if !restored {
				t.Error("no model conclusion names a real value: tokens were not restored")
			}
		})
	}
}

// encodings are the forms v can take in a request body: as is, JSON
// encoded once (the prompt's quoted values) and twice (inside the body).
func encodings(v string) []string {
	enc := func(s string, html bool) string {
		var b strings.Builder
		e := json.NewEncoder(&b)
		e.SetEscapeHTML(html)
		e.Encode(s)
		return strings.Trim(strings.TrimSpace(b.String()), `"`)
	}
	forms := []string{v}
	for _, h1 := range []bool{false, true} {
		once := enc(v, h1)
		forms = append(forms, once)
		for _, h2 := range []bool{false, true} {
			forms = append(forms, enc(once, h2))
		}
	}
	slices.Sort(forms)
	return slices.Compact(forms)
}
