package detect

import (
	"strings"
	"unsafe"

	"github.com/loupe-sec/loupe/internal/event"
)

// Windows behaviour families beyond the basic rules: lateral movement,
// privilege escalation, defense evasion, credential access and
// persistence. Match functions first test typed fields (event id, image,
// parent image) or the raw record bytes, and only then look up event data
// fields, so events that cannot match do not allocate.

// --- small helpers ---

// rawHas reports whether the raw record contains the lower-case ASCII
// literal sub, ignoring case, without allocating. The record is JSON, so
// sub must be written as it appears there (backslashes doubled).
func rawHas(ev *event.Event, sub string) bool {
	if len(ev.Raw) == 0 {
		return false
	}
	return containsFold(unsafe.String(unsafe.SliceData(ev.Raw), len(ev.Raw)), sub)
}

// baseIs reports whether the path's last element equals one of names
// (lower case), ignoring case.
func baseIs(path string, names ...string) bool {
	b := basename(path)
	for _, n := range names {
		if len(b) == len(n) && equalFoldASCII(b, n) {
			return true
		}
	}
	return false
}

func hasSuffixFold(s, lowerSuffix string) bool {
	return len(s) >= len(lowerSuffix) && equalFoldASCII(s[len(s)-len(lowerSuffix):], lowerSuffix)
}

// processEvent reports a process creation from Sysmon (1) or the Security
// log (4688).
func processEvent(ev *event.Event) bool {
	switch ev.EventID {
	case 1:
		return fromSysmon(ev) || noOrigin(ev)
	case 4688:
		return fromSecurity(ev)
	}
	return false
}

// shellImages are interpreters and script hosts an attacker's remote
// execution usually starts.
var shellImages = []string{"cmd.exe", "powershell.exe", "pwsh.exe", "wscript.exe", "cscript.exe", "mshta.exe",
	"rundll32.exe", "regsvr32.exe", "bitsadmin.exe", "certutil.exe", "msiexec.exe", "schtasks.exe", "sc.exe", "reg.exe", "net.exe", "net1.exe", "whoami.exe"}

// childDesc describes a started process for a What clause.
func childDesc(ev *event.Event) string {
	if ev.CommandLine != "" {
		return quoted(ev.CommandLine, 160)
	}
	return ev.Image
}

func registryEvent(ev *event.Event) bool {
	return (ev.EventID == 12 || ev.EventID == 13 || ev.EventID == 14) && fromSysmon(ev)
}

// --- lateral movement ---

func matchRemoteExecCommand(in *input) (hit, bool) {
	lc := in.lc
	as := func() []string { return args(in.cmd) }
	host := func(a []string) string {
		for _, x := range a {
			if strings.HasPrefix(x, `\\`) && len(x) > 2 {
				h := x[2:]
				if i := strings.IndexByte(h, '\\'); i >= 0 {
					h = h[:i]
				}
				return h
			}
		}
		return ""
	}
	switch {
	case (hasProg(lc, "sc") || hasProg(lc, "sc.exe")) && strings.Contains(lc, ` \\`) &&
		(strings.Contains(lc, " create ") || strings.Contains(lc, " config ") || strings.Contains(lc, " start ")):
		a := as()
		h := host(a)
		name := argAfter(a, "create", "config", "start")
		return hit{what: "controlled service " + quoted(name, 80) + " on remote host " + h + " with sc.exe: " + quoted(in.cmd, 160), object: strings.ToLower(h + "|" + name), raise: true}, true
	case hasProg(lc, "schtasks") && strings.Contains(lc, "/create") && (strings.Contains(lc, " /s ") || strings.Contains(lc, " -s ")):
		a := as()
		h := argAfter(a, "/s", "-s")
		return hit{what: "created scheduled task " + quoted(argAfter(a, "/tn", "-tn"), 100) + " on remote host " + h + " with schtasks.exe", object: strings.ToLower(h + "|" + argAfter(a, "/tn", "-tn")), raise: true}, true
	case hasProg(lc, "wmic") && strings.Contains(lc, "/node:") && strings.Contains(lc, "create"):
		i := strings.Index(lc, "/node:") + len("/node:")
		h := strings.Trim(strings.SplitN(strings.TrimSpace(in.cmd[i:]), " ", 2)[0], `"'`)
		return hit{what: "ran wmic to create a process on remote host " + h + ": " + quoted(in.cmd, 160), object: strings.ToLower(h) + "|" + norm(lc), raise: true}, true
	case strings.Contains(lc, "invoke-command") || strings.Contains(lc, "enter-pssession") || strings.Contains(lc, "new-pssession") || strings.Contains(lc, "invoke-wmimethod"):
		if !strings.Contains(lc, "-computername") && !strings.Contains(lc, "-cn ") && !strings.Contains(lc, "-session") && !strings.Contains(lc, "enter-pssession") {
			return hit{}, false
		}
		h := argAfter(as(), "-computername", "-cn")
		what := "ran PowerShell remoting"
		if h != "" {
			what += " against host " + h
		}
		return hit{what: what + ": " + quoted(in.cmd, 160), object: strings.ToLower(h) + "|" + norm(lc)}, true
	case hasProg(lc, "winrs") && (strings.Contains(lc, "-r:") || strings.Contains(lc, "/r:") || strings.Contains(lc, "-remote:")):
		return hit{what: "ran a command on a remote host with winrs: " + quoted(in.cmd, 160), object: norm(lc), raise: true}, true
	case (hasProg(lc, "psexec") || hasProg(lc, "psexec64") || hasProg(lc, "paexec")) && strings.Contains(lc, `\\`):
		h := host(as())
		return hit{what: "ran PsExec against remote host " + h + ": " + quoted(in.cmd, 160), object: strings.ToLower(h) + "|" + norm(lc), raise: true}, true
	case hasProg(lc, "reg") && strings.Contains(lc, ` \\`) && (strings.Contains(lc, " add ") || strings.Contains(lc, " delete ") || strings.Contains(lc, " save ")):
		h := host(as())
		return hit{what: "changed the registry of remote host " + h + " with reg.exe: " + quoted(in.cmd, 160), object: strings.ToLower(h) + "|" + norm(lc)}, true
	}
	return hit{}, false
}

// matchRemoteChild reports shells started by the host process of a
// remote execution channel; parents are the lower-case parent image names.
func matchRemoteChild(in *input, via string, anyChild bool, parents ...string) (hit, bool) {
	ev := in.ev
	if in.lc != "" || !processEvent(ev) || !baseIs(ev.ParentImage, parents...) {
		return hit{}, false
	}
	if baseIs(ev.Image, "conhost.exe", "werfault.exe", "wmiadap.exe", "wmiprvse.exe") {
		return hit{}, false
	}
	if !anyChild && !baseIs(ev.Image, shellImages...) {
		return hit{}, false
	}
	return hit{what: "started " + childDesc(ev) + " through " + via, object: strings.ToLower(basename(ev.Image)) + "|" + norm(ev.CommandLine), raise: baseIs(ev.Image, "cmd.exe", "powershell.exe", "pwsh.exe")}, true
}

func matchWMIRemote(in *input) (hit, bool) {
	return matchRemoteChild(in, "WMI (parent WmiPrvSE.exe)", false, "wmiprvse.exe")
}

func matchWinRMRemote(in *input) (hit, bool) {
	return matchRemoteChild(in, "WinRM (parent wsmprovhost.exe)", true, "wsmprovhost.exe", "winrshost.exe")
}

var officeImages = []string{"winword.exe", "excel.exe", "powerpnt.exe", "outlook.exe", "msaccess.exe", "mspub.exe", "visio.exe"}

// dcomLaunched reports a parent started as a COM server (-Embedding).
func dcomLaunched(ev *event.Event) bool {
	return rawHas(ev, "-embedding") || rawHas(ev, "/automation")
}

func matchDCOMRemote(in *input) (hit, bool) {
	ev := in.ev
	if in.lc != "" || !processEvent(ev) || !baseIs(ev.Image, shellImages...) {
		return hit{}, false
	}
	switch {
	case baseIs(ev.ParentImage, "mmc.exe") && dcomLaunched(ev):
		return hit{what: "started " + childDesc(ev) + " through DCOM (MMC20.Application in mmc.exe)", object: norm(ev.CommandLine), raise: true}, true
	case baseIs(ev.ParentImage, officeImages...) && dcomLaunched(ev):
		return hit{what: "started " + childDesc(ev) + " through DCOM (" + basename(ev.ParentImage) + " started as a COM server)", object: norm(ev.CommandLine), raise: true}, true
	case baseIs(ev.ParentImage, "explorer.exe") && rawHas(ev, "shellbrowserwindow"):
		return hit{what: "started " + childDesc(ev) + " through DCOM (ShellBrowserWindow)", object: norm(ev.CommandLine), raise: true}, true
	}
	return hit{}, false
}

func matchOfficeChild(in *input) (hit, bool) {
	ev := in.ev
	if in.lc != "" || !processEvent(ev) || !baseIs(ev.ParentImage, officeImages...) || !baseIs(ev.Image, shellImages...) || dcomLaunched(ev) {
		return hit{}, false
	}
	return hit{what: "started " + childDesc(ev) + " from " + basename(ev.ParentImage) + " (document macro or exploit)", object: norm(ev.CommandLine), raise: baseIs(ev.Image, "powershell.exe", "mshta.exe", "certutil.exe", "bitsadmin.exe")}, true
}

// remoteShareTargets are relative targets of 5145 that show remote
// service, task or registry control, or a tool dropped over SMB.
var remoteShareTargets = []string{"svcctl", "atsvc", "winreg", "psexesvc", "paexec", "remcom", "csexec", "-stdin", "-stdout", "-stderr"}

var droppedExt = []string{".exe", ".dll", ".bat", ".ps1", ".vbs", ".cmd", ".sys", ".hta", ".scr"}

func matchAdminShare(in *input) (hit, bool) {
	ev := in.ev
	if !fromSecurity(ev) || !(rawHas(ev, "admin$") || rawHas(ev, `c$`) || rawHas(ev, "ipc$")) {
		return hit{}, false
	}
	share := data(ev, "ShareName")
	ls := strings.ToLower(share)
	admin := strings.HasSuffix(ls, `\admin$`) || strings.HasSuffix(ls, `\c$`)
	if ev.EventID == 5140 {
		if !admin {
			return hit{}, false
		}
		return hit{what: "accessed the administrative share " + share + remoteFrom(ev), object: ls}, true
	}
	target := data(ev, "RelativeTargetName")
	lt := strings.ToLower(target)
	known := false
	for _, s := range remoteShareTargets {
		if strings.Contains(lt, s) {
			known = true
		}
	}
	dropped := admin && containsAny(lt, droppedExt) && rawHas(ev, "writedata")
	if !known && !(admin && (containsAny(lt, droppedExt) && strings.Count(lt, `\`) <= 1 || dropped)) {
		return hit{}, false
	}
	what := "accessed " + share + `\` + target + remoteFrom(ev)
	switch {
	case strings.Contains(lt, "svcctl"):
		what += " (remote service control)"
	case strings.Contains(lt, "atsvc"):
		what += " (remote task scheduling)"
	case strings.Contains(lt, "winreg"):
		what += " (remote registry)"
	case containsAny(lt, []string{"psexesvc", "paexec", "remcom", "csexec", "-stdin", "-stdout", "-stderr"}):
		what += " (PsExec-style remote execution)"
	}
	return hit{what: what, object: ls + "|" + lt, raise: strings.Contains(lt, "psexesvc") || dropped}, true
}

func remoteFrom(ev *event.Event) string {
	if ev.SrcIP != "" {
		return " from " + ev.SrcIP
	}
	return ""
}

func matchPassTheHash(in *input) (hit, bool) {
	ev := in.ev
	if !fromSecurity(ev) {
		return hit{}, false
	}
	switch {
	case ev.LogonType == 9 && rawHas(ev, "seclogo"):
		return hit{what: "logged on with explicit new credentials for " + quoted(ev.TargetUser, 80) + " through seclogo (logon type 9), as pass-the-hash tools do", object: "seclogo|" + strings.ToLower(ev.TargetUser), raise: true}, true
	case ev.LogonType == 3 && rawHas(ev, "ntlmssp") && ev.SrcIP != "" && !strings.EqualFold(ev.TargetUser, "ANONYMOUS LOGON") && !hasSuffixFold(ev.TargetUser, "$"):
		if data(ev, "KeyLength") != "0" || !strings.EqualFold(data(ev, "AuthenticationPackageName"), "NTLM") {
			return hit{}, false
		}
		return hit{what: "logged on over the network as " + quoted(ev.TargetUser, 80) + " with NTLM and no session key (pass-the-hash pattern)", object: "ntlm|" + strings.ToLower(ev.TargetUser) + "|" + ev.SrcIP}, true
	}
	return hit{}, false
}

func matchRDPLogon(in *input) (hit, bool) {
	ev := in.ev
	if ev.LogonType != 10 || !fromSecurity(ev) || ev.SrcIP == "" {
		return hit{}, false
	}
	if ev.SrcIP == "127.0.0.1" || ev.SrcIP == "::1" {
		// The loopback address hides the real client: leave the actor to the event.
		return hit{what: "logged on over RDP as " + quoted(ev.TargetUser, 80) + " from the loopback address, which shows a tunnelled RDP session", object: "loopback|" + strings.ToLower(ev.TargetUser), raise: true}, true
	}
	return hit{what: "logged on over RDP as " + quoted(ev.TargetUser, 80), object: ev.SrcIP + "|" + strings.ToLower(ev.TargetUser), actor: ev.SrcIP}, true
}

// --- privilege escalation ---

// uacBypassKeys are registry keys whose hijack makes an auto-elevating
// binary run an attacker's command.
var uacBypassKeys = []string{`\ms-settings\shell\open\command`, `\mscfile\shell\open\command`, `\exefile\shell\open\command`,
	`\folder\shell\open\command`, `\launcher.systemsettings\shell\open\command`, `\app paths\control.exe`, `\environment\windir`, `\sdclt.exe`}

func matchUACBypassRegistry(in *input) (hit, bool) {
	if in.lc != "" {
		lc := in.lc
		if !(hasProg(lc, "reg") && strings.Contains(lc, " add ") || strings.Contains(lc, "new-item") || strings.Contains(lc, "set-itemproperty") || strings.Contains(lc, "new-itemproperty")) {
			return hit{}, false
		}
		for _, k := range uacBypassKeys {
			if strings.Contains(lc, k) {
				return hit{what: "hijacked the auto-elevation key " + quoted(k[1:], 80) + " to bypass UAC: " + quoted(in.cmd, 160), object: k}, true
			}
		}
		return hit{}, false
	}
	ev := in.ev
	if !registryEvent(ev) || !(rawHas(ev, "open") || rawHas(ev, "control.exe") || rawHas(ev, "windir") || rawHas(ev, "sdclt")) {
		return hit{}, false
	}
	key := data(ev, "TargetObject")
	lk := strings.ToLower(key)
	if !strings.HasPrefix(lk, "hkcu") && !strings.HasPrefix(lk, "hku") {
		return hit{}, false
	}
	for _, k := range uacBypassKeys {
		if strings.Contains(lk, k) {
			what := "set " + key
			if v := data(ev, "Details"); v != "" {
				what += " to " + quoted(v, 160)
			}
			return hit{what: what + " to bypass UAC through an auto-elevating binary", object: k, raise: true}, true
		}
	}
	return hit{}, false
}

var autoElevators = []string{"eventvwr.exe", "fodhelper.exe", "computerdefaults.exe", "sdclt.exe", "slui.exe", "wsreset.exe", "changepk.exe", "cmstp.exe", "consent.exe"}

func matchUACBypassProcess(in *input) (hit, bool) {
	ev := in.ev
	if in.lc != "" || !processEvent(ev) || !baseIs(ev.ParentImage, autoElevators...) {
		return hit{}, false
	}
	if baseIs(ev.Image, "mmc.exe", "werfault.exe", "conhost.exe", "control.exe", "systemsettings.exe", "slui.exe", "sppsvc.exe", "consent.exe", "explorer.exe", "sdclt.exe") {
		return hit{}, false
	}
	return hit{what: "started " + childDesc(ev) + " from the auto-elevating " + basename(ev.ParentImage) + " (UAC bypass)", object: strings.ToLower(basename(ev.ParentImage)) + "|" + norm(ev.Image), raise: baseIs(ev.Image, shellImages...)}, true
}

func matchPipeImpersonation(in *input) (hit, bool) {
	var cmd string
	if in.lc != "" {
		cmd = in.cmd
	} else {
		ev := in.ev
		if !serviceEvent(ev) || !rawHas(ev, `\\\\.\\pipe\\`) {
			return hit{}, false
		}
		_, cmd = serviceFields(ev)
	}
	lc := strings.ToLower(cmd)
	i := strings.Index(lc, `\\.\pipe\`)
	if i < 0 || !(strings.Contains(lc, "echo") || strings.Contains(lc, "cmd")) {
		return hit{}, false
	}
	pipe := cmd[i:]
	if j := strings.IndexAny(pipe, " \t\"'"); j >= 0 {
		pipe = pipe[:j]
	}
	what := "wrote to named pipe " + pipe + " from a command shell to impersonate its client (getsystem-style)"
	if in.lc == "" {
		what = "installed a service that writes to named pipe " + pipe + " to impersonate SYSTEM (getsystem-style)"
	}
	return hit{what: what, object: strings.ToLower(pipe), raise: true}, true
}

func matchServiceHijack(in *input) (hit, bool) {
	if in.lc != "" {
		lc := in.lc
		if !(hasProg(lc, "sc") || hasProg(lc, "sc.exe")) || !strings.Contains(lc, " config ") || !strings.Contains(lc, "binpath") {
			if hasProg(lc, "reg") && strings.Contains(lc, " add ") && strings.Contains(lc, `\services\`) && strings.Contains(lc, "imagepath") {
				return hit{what: "changed a service's ImagePath with reg.exe: " + quoted(in.cmd, 160), object: norm(lc), raise: containsAny(lc, launcherMarkers)}, true
			}
			return hit{}, false
		}
		a := args(in.cmd)
		name := argAfter(a, "config")
		path := argAfter(a, "binpath=", "binPath=")
		if path == "" {
			if i := strings.Index(lc, "binpath="); i >= 0 {
				path = strings.Trim(strings.TrimSpace(in.cmd[i+len("binpath="):]), `"`)
			}
		}
		return hit{what: "changed the binary of service " + quoted(name, 80) + " to " + clip(oneLine(path), 200) + " with sc.exe", object: strings.ToLower(name), raise: containsAny(strings.ToLower(path), launcherMarkers)}, true
	}
	ev := in.ev
	if !registryEvent(ev) || baseIs(ev.Image, "services.exe", "msiexec.exe", "trustedinstaller.exe", "tiworker.exe", "drvinst.exe") || !rawHas(ev, "imagepath") {
		return hit{}, false
	}
	key := data(ev, "TargetObject")
	lk := strings.ToLower(key)
	if !strings.Contains(lk, `\services\`) || !strings.HasSuffix(lk, `\imagepath`) {
		return hit{}, false
	}
	value := data(ev, "Details")
	return hit{what: "changed service ImagePath " + key + " to " + quoted(value, 160), object: lk, raise: containsAny(strings.ToLower(value), launcherMarkers)}, true
}

// --- defense evasion ---

// injectionTargets are processes attackers inject into to hide or to
// inherit their privileges.
var injectionTargets = []string{"lsass.exe", "explorer.exe", "svchost.exe", "winlogon.exe", "services.exe", "spoolsv.exe", "csrss.exe",
	"notepad.exe", "rundll32.exe", "dllhost.exe", "taskhost.exe", "taskhostw.exe", "iexplore.exe", "chrome.exe", "firefox.exe", "msedge.exe", "outlook.exe", "winword.exe", "excel.exe", "powershell.exe", "mstsc.exe"}

var benignThreadSources = []string{"csrss.exe", "wininit.exe", "services.exe", "smss.exe", "system", "lsass.exe", "svchost.exe", "wmiprvse.exe", "msmpeng.exe", "werfault.exe", "vmtoolsd.exe", "dwm.exe", "winlogon.exe"}

func matchRemoteThread(in *input) (hit, bool) {
	ev := in.ev
	if !fromSysmon(ev) {
		return hit{}, false
	}
	src := data(ev, "SourceImage")
	target := data(ev, "TargetImage")
	if !baseIs(target, injectionTargets...) || strings.EqualFold(src, target) {
		return hit{}, false
	}
	lsrc := strings.ToLower(src)
	if (strings.Contains(lsrc, `\windows\system32\`) || strings.Contains(lsrc, `\windows\syswow64\`)) && baseIs(src, benignThreadSources...) || baseIs(src, "msmpeng.exe", "system") {
		return hit{}, false
	}
	fn := data(ev, "StartFunction")
	what := "created a thread in " + target + " from " + src
	if fn != "" {
		what += " (start function " + fn + ")"
	}
	return hit{what: what + ", a process injection", object: lsrc + "|" + strings.ToLower(basename(target)), raise: fn == "" || strings.EqualFold(fn, "LoadLibraryA") || strings.EqualFold(fn, "LoadLibraryW") || baseIs(target, "lsass.exe")}, true
}

var injectAccess = []string{"0x1fffff", "0x1f3fff", "0x1f0fff", "0x143a", "0x1f2fff", "0x1fffff", "0x40", "0x820", "0x1f1fff", "0x147a", "0x800"}

func matchInjectedAccess(in *input) (hit, bool) {
	ev := in.ev
	if !fromSysmon(ev) || !rawHas(ev, "unknown(") {
		return hit{}, false
	}
	target := data(ev, "TargetImage")
	if baseIs(target, "lsass.exe") { // loupe-lsass-access judges LSASS
		return hit{}, false
	}
	src := data(ev, "SourceImage")
	ls := strings.ToLower(src)
	if strings.Contains(ls, `\program files`) || strings.Contains(ls, `\windows defender`) || strings.Contains(ls, `\microsoft\edgeupdate`) {
		return hit{}, false
	}
	access := strings.ToLower(data(ev, "GrantedAccess"))
	ok := false
	for _, a := range injectAccess {
		if access == a {
			ok = true
		}
	}
	if !ok {
		return hit{}, false
	}
	return hit{what: "opened " + target + " with access " + access + " from code outside any loaded module (" + src + "), a sign of injected code", object: ls + "|" + strings.ToLower(basename(target))}, true
}

func matchTimestomp(in *input) (hit, bool) {
	ev := in.ev
	if !fromSysmon(ev) {
		return hit{}, false
	}
	li := strings.ToLower(ev.Image)
	if strings.Contains(li, `\program files`) || baseIs(ev.Image, "msiexec.exe", "tiworker.exe", "trustedinstaller.exe", "svchost.exe", "onedrive.exe", "dropbox.exe", "setup.exe", "mrt.exe", "msmpeng.exe") {
		return hit{}, false
	}
	file := data(ev, "TargetFilename")
	lf := strings.ToLower(file)
	userDir := containsAny(li, []string{`\temp\`, `\appdata\`, `\users\public\`, `\downloads\`, `\programdata\`, `\perflogs\`}) || baseIs(ev.Image, "powershell.exe", "cmd.exe", "rundll32.exe")
	exec := containsAny(lf, droppedExt) || strings.Contains(lf, `\windows\system32\`)
	if !userDir && !exec {
		return hit{}, false
	}
	what := "changed the creation time of " + file
	if prev := data(ev, "PreviousCreationUtcTime"); prev != "" {
		what += " from " + prev + " to " + data(ev, "CreationUtcTime")
	}
	return hit{what: what + " (timestomping) with " + basename(ev.Image), object: lf, raise: userDir && exec}, true
}

func matchProxyExec(in *input) (hit, bool) {
	lc := in.lc
	var what string
	raise := false
	switch {
	case hasProg(lc, "msbuild") && containsAny(lc, []string{`\temp\`, `\tmp\`, `\users\public\`, `\appdata\`, `\downloads\`, `\programdata\`, ".xml", ".csproj\"", "/tmp/"}) && !strings.Contains(lc, ".sln"):
		what = "built and ran an inline project with MSBuild"
	case hasProg(lc, "installutil") && (strings.Contains(lc, "/u") || strings.Contains(lc, "/logfile=") || strings.Contains(lc, "-u ")):
		what = "ran code through InstallUtil"
	case hasProg(lc, "cmstp") && (strings.Contains(lc, "/s") || strings.Contains(lc, "/au")) && strings.Contains(lc, ".inf"):
		what = "ran an INF file through cmstp.exe"
		raise = true
	case hasProg(lc, "odbcconf") && (strings.Contains(lc, "regsvr") || strings.Contains(lc, "-f ") || strings.Contains(lc, "/f ")):
		what = "loaded a DLL through odbcconf.exe"
	case hasProg(lc, "wmic") && strings.Contains(lc, "format:") && (strings.Contains(lc, ".xsl") || strings.Contains(lc, "http")):
		what = "ran an XSL script through wmic /format"
		raise = true
	case hasProg(lc, "msxsl"):
		what = "ran an XSL script with msxsl.exe"
	case hasProg(lc, "regsvr32") && (strings.Contains(lc, "/i:") || strings.Contains(lc, "-i:")) && (strings.Contains(lc, ".sct") || strings.Contains(lc, "/n")):
		what = "ran a scriptlet through regsvr32.exe"
	case hasProg(lc, "rundll32") && containsAny(lc, []string{"url.dll,fileprotocolhandler", "url.dll,openurl", "zipfldr.dll,routethecall", "advpack.dll,launchinfsection", "advpack.dll,registerocx", "ieadvpack.dll", "pcwutl.dll,launchapplication", "shell32.dll,shellexec_rundll", "setupapi.dll,installhinfsection", "syssetup.dll,setupinfobjectinstallaction", "shdocvw.dll,openurl", "dfshim.dll"}):
		what = "ran a program through a rundll32.exe proxy export"
	case hasProg(lc, "rundll32") && containsAny(lc, []string{`\temp\`, `\appdata\`, `\users\public\`, `\programdata\`, `\downloads\`}):
		what = "loaded a DLL from a user-writable folder with rundll32.exe"
	case hasProg(lc, "msiexec") && (strings.Contains(lc, "http://") || strings.Contains(lc, "https://")):
		what = "installed a remote package with msiexec.exe"
		raise = true
	case hasProg(lc, "mavinject") && strings.Contains(lc, "/injectrunning"):
		what = "injected a DLL into a running process with mavinject.exe"
		raise = true
	case hasProg(lc, "hh") && (strings.Contains(lc, "http") || strings.Contains(lc, `\temp\`)):
		what = "opened compiled HTML help with hh.exe"
	case (hasProg(lc, "forfiles") && strings.Contains(lc, "/c")) || (hasProg(lc, "pcalua") && strings.Contains(lc, "-a")):
		what = "started a program indirectly through " + basenameOf(in.cmd, lc, "forfiles", "pcalua")
	case hasProg(lc, "control") && strings.Contains(lc, ".cpl") && containsAny(lc, []string{`\temp\`, `\appdata\`, `\users\public\`, `\downloads\`}):
		what = "loaded a control panel item from a user-writable folder"
	case hasProg(lc, "regasm") || hasProg(lc, "regsvcs"):
		if !containsAny(lc, []string{`\temp\`, `\appdata\`, `\users\public\`, `\downloads\`, "/u"}) {
			return hit{}, false
		}
		what = "ran code through RegAsm/RegSvcs"
	default:
		return hit{}, false
	}
	return hit{what: what + ": " + quoted(in.cmd, 160), object: norm(lc), raise: raise}, true
}

func basenameOf(cmd, lc string, names ...string) string {
	for _, n := range names {
		if hasProg(lc, n) {
			return n + ".exe"
		}
	}
	return basename(cmd)
}

var defenderSwitches = []string{"disablerealtimemonitoring", "disableioavprotection", "disablebehaviormonitoring", "disableblockatfirstseen",
	"disablescriptscanning", "disableintrusionpreventionsystem", "disablearchivescanning", "disableantispyware", "disableantivirus", "mapsreporting 0", "submitsamplesconsent 2"}

func matchDefenderTamper(in *input) (hit, bool) {
	if in.lc != "" {
		lc := in.lc
		switch {
		case strings.Contains(lc, "set-mppreference") && containsAny(lc, defenderSwitches):
			return hit{what: "turned off Microsoft Defender protection with Set-MpPreference: " + quoted(in.cmd, 160), object: norm(lc), raise: true}, true
		case strings.Contains(lc, "add-mppreference") && strings.Contains(lc, "exclusion"):
			return hit{what: "added a Microsoft Defender exclusion: " + quoted(in.cmd, 160), object: norm(lc)}, true
		case (hasProg(lc, "sc") || hasProg(lc, "sc.exe") || hasProg(lc, "net") || strings.Contains(lc, "stop-service") || strings.Contains(lc, "set-service")) &&
			containsAny(lc, []string{"windefend", "sense ", "wdnissvc", "wdboot", "wdfilter"}) && containsAny(lc, []string{"stop", "disabled", "delete"}):
			return hit{what: "stopped or disabled the Microsoft Defender service: " + quoted(in.cmd, 160), object: norm(lc), raise: true}, true
		case hasProg(lc, "reg") && strings.Contains(lc, " add ") && strings.Contains(lc, "windows defender") && containsAny(lc, defenderSwitches):
			return hit{what: "turned off Microsoft Defender through the registry: " + quoted(in.cmd, 160), object: norm(lc), raise: true}, true
		}
		return hit{}, false
	}
	ev := in.ev
	switch ev.EventID {
	case 5001, 5010, 5012:
		if !containsFold(ev.Provider, "defender") && !containsFold(ev.Channel, "defender") {
			return hit{}, false
		}
		names := map[int]string{5001: "real-time protection", 5010: "anti-spyware scanning", 5012: "anti-virus scanning"}
		return hit{what: "had Microsoft Defender " + names[ev.EventID] + " turned off", object: "defender|" + names[ev.EventID], raise: true}, true
	}
	if !registryEvent(ev) || !rawHas(ev, "windows defender") || !rawHas(ev, "disable") {
		return hit{}, false
	}
	key := data(ev, "TargetObject")
	lk := strings.ToLower(key)
	if !containsAny(lk, defenderSwitches) || !strings.Contains(lk, "windows defender") {
		return hit{}, false
	}
	value := data(ev, "Details")
	if strings.Contains(strings.ToLower(value), "0x00000000") {
		return hit{}, false // turning protection back on
	}
	return hit{what: "set " + key + " to " + quoted(value, 40) + ", turning off Microsoft Defender", object: lk, raise: true}, true
}

func matchLoggingTamper(in *input) (hit, bool) {
	if in.lc != "" {
		lc := in.lc
		switch {
		case hasProg(lc, "fltmc") && (strings.Contains(lc, "unload") || strings.Contains(lc, "detach")):
			return hit{what: "unloaded a file system minifilter with fltmc (blinds Sysmon or EDR): " + quoted(in.cmd, 160), object: norm(lc), raise: true}, true
		case (hasProg(lc, "sysmon") || hasProg(lc, "sysmon64")) && (strings.Contains(lc, " -u") || strings.Contains(lc, " /u")):
			return hit{what: "uninstalled Sysmon: " + quoted(in.cmd, 160), object: norm(lc), raise: true}, true
		case hasProg(lc, "auditpol") && (strings.Contains(lc, "/clear") || strings.Contains(lc, "/remove") || strings.Contains(lc, ":disable")):
			return hit{what: "turned off Windows audit policy with auditpol: " + quoted(in.cmd, 160), object: norm(lc)}, true
		case hasProg(lc, "wevtutil") && (strings.Contains(lc, " sl ") || strings.Contains(lc, " set-log ")) && strings.Contains(lc, "/e:false"):
			return hit{what: "disabled an event log channel with wevtutil: " + quoted(in.cmd, 160), object: norm(lc)}, true
		case hasProg(lc, "logman") && (strings.Contains(lc, " stop ") || strings.Contains(lc, " delete ") || strings.Contains(lc, "--p")) && containsAny(lc, []string{"eventlog", "sysmon", "etw", "defender", "powershell", "security"}):
			return hit{what: "stopped an event tracing session with logman: " + quoted(in.cmd, 160), object: norm(lc), raise: true}, true
		case (hasProg(lc, "sc") || hasProg(lc, "net") || strings.Contains(lc, "stop-service")) && strings.Contains(lc, "eventlog") && containsAny(lc, []string{"stop", "disabled"}):
			return hit{what: "stopped the Windows event log service: " + quoted(in.cmd, 160), object: norm(lc), raise: true}, true
		}
		return hit{}, false
	}
	ev := in.ev
	switch ev.EventID {
	case 4719:
		if !fromSecurity(ev) || !(rawHas(ev, "%%8448") || rawHas(ev, "%%8450")) {
			return hit{}, false
		}
		sub := data(ev, "SubcategoryGuid")
		if s := data(ev, "SubcategoryId"); s != "" {
			sub = s
		}
		return hit{what: "removed auditing from audit policy subcategory " + sub, object: "4719|" + strings.ToLower(sub)}, true
	case 1100:
		if !(containsFold(ev.Provider, "eventlog") || strings.EqualFold(ev.Channel, "Security")) {
			return hit{}, false
		}
		return hit{what: "shut down the event logging service", object: "1100"}, true
	}
	if !registryEvent(ev) || !(rawHas(ev, "autologger") || rawHas(ev, "eventlog") || rawHas(ev, "sysmon")) {
		return hit{}, false
	}
	key := data(ev, "TargetObject")
	lk := strings.ToLower(key)
	value := strings.ToLower(data(ev, "Details"))
	if !(strings.HasSuffix(lk, `\start`) || strings.HasSuffix(lk, `\enabled`)) || !(value == "dword (0x00000000)" || value == "dword (0x00000004)") {
		return hit{}, false
	}
	return hit{what: "set " + key + " to " + quoted(value, 40) + ", turning off event logging", object: lk, raise: true}, true
}

func matchFirewallTamper(in *input) (hit, bool) {
	lc := in.lc
	switch {
	case hasProg(lc, "netsh") && ((strings.Contains(lc, "advfirewall") && strings.Contains(lc, "state off")) || strings.Contains(lc, "opmode disable") || strings.Contains(lc, "opmode mode=disable")):
		return hit{what: "turned off Windows Firewall with netsh: " + quoted(in.cmd, 160), object: norm(lc), raise: true}, true
	case strings.Contains(lc, "set-netfirewallprofile") && strings.Contains(lc, "false"):
		return hit{what: "turned off Windows Firewall with Set-NetFirewallProfile: " + quoted(in.cmd, 160), object: norm(lc), raise: true}, true
	case hasProg(lc, "netsh") && strings.Contains(lc, "firewall") && (strings.Contains(lc, " add ") || strings.Contains(lc, " set ")) &&
		(strings.Contains(lc, "action=allow") || strings.Contains(lc, "mode=enable")) && (strings.Contains(lc, "dir=in") || strings.Contains(lc, "allowedprogram") || strings.Contains(lc, "portopening")):
		return hit{what: "opened an inbound Windows Firewall rule with netsh: " + quoted(in.cmd, 160), object: norm(lc)}, true
	}
	return hit{}, false
}

// systemNames are Windows system binaries whose only home is System32.
var systemNames = []string{"svchost.exe", "lsass.exe", "csrss.exe", "services.exe", "smss.exe", "winlogon.exe", "wininit.exe", "lsm.exe", "spoolsv.exe", "taskhost.exe", "taskhostw.exe", "dllhost.exe", "conhost.exe", "rundll32.exe", "lsaiso.exe"}

func matchMasquerade(in *input) (hit, bool) {
	ev := in.ev
	if in.lc != "" || !processEvent(ev) || ev.Image == "" || !baseIs(ev.Image, systemNames...) {
		return hit{}, false
	}
	if containsFold(ev.Image, `\windows\system32\`) || containsFold(ev.Image, `\windows\syswow64\`) || containsFold(ev.Image, `\windows\winsxs\`) ||
		!strings.ContainsAny(ev.Image, `\/`) {
		return hit{}, false
	}
	return hit{what: "ran " + ev.Image + ", a system binary name outside System32", object: strings.ToLower(ev.Image), raise: true}, true
}

func matchHiddenFile(in *input) (hit, bool) {
	lc := in.lc
	if !hasProg(lc, "attrib") || !strings.Contains(lc, "+h") {
		return hit{}, false
	}
	return hit{what: "hid a file with attrib: " + quoted(in.cmd, 160), object: norm(lc), raise: containsAny(lc, droppedExt) && strings.Contains(lc, "+s")}, true
}

// --- credential access ---

// replicationRights are the DS-Replication-Get-Changes(-All / -In-Filtered-Set) GUIDs.
var replicationRights = []string{"1131f6aa-9c07-11d1-f79f-00c04fc2dcd2", "1131f6ad-9c07-11d1-f79f-00c04fc2dcd2", "89e95b76-444d-4c62-991a-0facbeda640c"}

func matchDCSync(in *input) (hit, bool) {
	ev := in.ev
	if !fromSecurity(ev) || !(rawHas(ev, "1131f6a") || rawHas(ev, "89e95b76")) {
		return hit{}, false
	}
	if hasSuffixFold(ev.User, "$") {
		return hit{}, false // domain controllers replicate with their machine accounts
	}
	props := strings.ToLower(data(ev, "Properties"))
	for _, g := range replicationRights {
		if strings.Contains(props, g) {
			return hit{what: "requested directory replication (DCSync) as " + quoted(ev.User, 80), object: strings.ToLower(ev.User), raise: true}, true
		}
	}
	return hit{}, false
}

func matchASREPRoast(in *input) (hit, bool) {
	ev := in.ev
	if !fromSecurity(ev) || !rawHas(ev, "preauthtype") {
		return hit{}, false
	}
	if data(ev, "PreAuthType") != "0" || data(ev, "Status") != "0x0" && data(ev, "Status") != "" {
		return hit{}, false
	}
	user := ev.TargetUser
	return hit{what: "obtained a Kerberos TGT for " + quoted(user, 80) + " without pre-authentication (AS-REP roasting)" + remoteFrom(ev), object: strings.ToLower(user)}, true
}

func matchHiveCopy(in *input) (hit, bool) {
	lc := in.lc
	if !containsAny(lc, []string{`\config\sam`, `\config\system`, `\config\security`}) {
		return hit{}, false
	}
	if !(hasProg(lc, "esentutl") || hasProg(lc, "copy") || strings.Contains(lc, "copy-item") || hasProg(lc, "xcopy") || hasProg(lc, "robocopy") ||
		strings.Contains(lc, "harddiskvolumeshadowcopy") || hasProg(lc, "esentutl")) {
		return hit{}, false
	}
	return hit{what: "copied a registry credential hive from disk or a shadow copy: " + quoted(in.cmd, 160), object: norm(lc), raise: strings.Contains(lc, "shadowcopy")}, true
}

func matchCredentialStore(in *input) (hit, bool) {
	lc := in.lc
	switch {
	case hasProg(lc, "vaultcmd") && (strings.Contains(lc, "/listcreds") || strings.Contains(lc, "/list")):
		return hit{what: "listed Windows Vault credentials with vaultcmd: " + quoted(in.cmd, 160), object: norm(lc)}, true
	case containsAny(lc, []string{`\login data`, `\cookies`, `logins.json`, `key3.db`, `key4.db`, `\web data`}) &&
		(hasProg(lc, "copy") || hasProg(lc, "xcopy") || strings.Contains(lc, "copy-item") || hasProg(lc, "esentutl") || hasProg(lc, "type") || strings.Contains(lc, "get-content")):
		return hit{what: "copied a browser credential store: " + quoted(in.cmd, 160), object: norm(lc)}, true
	case strings.Contains(lc, `\microsoft\credentials\`) || strings.Contains(lc, `\microsoft\protect\`):
		if !(hasProg(lc, "copy") || hasProg(lc, "xcopy") || strings.Contains(lc, "copy-item") || hasProg(lc, "dir") || strings.Contains(lc, "get-childitem")) {
			return hit{}, false
		}
		return hit{what: "accessed the DPAPI credential files: " + quoted(in.cmd, 160), object: norm(lc)}, true
	case hasProg(lc, "findstr") && strings.Contains(lc, "password") && containsAny(lc, []string{".xml", ".ini", ".txt", ".config", "sysvol"}):
		return hit{what: "searched files for passwords: " + quoted(in.cmd, 160), object: norm(lc)}, true
	}
	return hit{}, false
}

// --- persistence and command and control ---

func matchWMISubscription(in *input) (hit, bool) {
	if in.lc != "" {
		lc := in.lc
		if !containsAny(lc, []string{"commandlineeventconsumer", "activescripteventconsumer"}) && !(strings.Contains(lc, "__eventfilter") && strings.Contains(lc, "create")) {
			return hit{}, false
		}
		return hit{what: "registered a permanent WMI event subscription: " + quoted(in.cmd, 160), object: norm(lc), raise: true}, true
	}
	ev := in.ev
	switch ev.EventID {
	case 19, 20, 21:
		if !fromSysmon(ev) {
			return hit{}, false
		}
		op := data(ev, "Operation")
		if strings.EqualFold(op, "Deleted") {
			return hit{}, false
		}
		switch ev.EventID {
		case 19:
			return hit{what: "created WMI event filter " + quoted(data(ev, "Name"), 80) + " with query " + quoted(data(ev, "Query"), 160), object: "filter|" + strings.ToLower(data(ev, "Name"))}, true
		case 20:
			dest := data(ev, "Destination")
			return hit{what: "created WMI event consumer " + quoted(data(ev, "Name"), 80) + " running " + quoted(dest, 160), object: "consumer|" + strings.ToLower(data(ev, "Name")), raise: containsAny(strings.ToLower(dest), launcherMarkers)}, true
		default:
			return hit{what: "bound WMI event consumer " + quoted(data(ev, "Consumer"), 120) + " to filter " + quoted(data(ev, "Filter"), 120), object: "binding|" + strings.ToLower(data(ev, "Consumer"))}, true
		}
	case 5861:
		if !containsFold(ev.Provider, "wmi-activity") && !containsFold(ev.Channel, "wmi-activity") {
			return hit{}, false
		}
		return hit{what: "registered a permanent WMI event subscription", object: "5861|" + norm(data(ev, "Consumer"))}, true
	}
	return hit{}, false
}

func matchPortProxy(in *input) (hit, bool) {
	if in.lc != "" {
		lc := in.lc
		if !hasProg(lc, "netsh") || !strings.Contains(lc, "portproxy") || !strings.Contains(lc, " add ") {
			return hit{}, false
		}
		return hit{what: "added a port forwarding rule with netsh interface portproxy: " + quoted(in.cmd, 160), object: norm(lc)}, true
	}
	ev := in.ev
	if !registryEvent(ev) || !rawHas(ev, "portproxy") {
		return hit{}, false
	}
	key := data(ev, "TargetObject")
	if !strings.Contains(strings.ToLower(key), `\services\portproxy\`) {
		return hit{}, false
	}
	return hit{what: "added port forwarding " + key + " to " + quoted(data(ev, "Details"), 80), object: strings.ToLower(key)}, true
}

var accessibilityBins = []string{"sethc.exe", "utilman.exe", "osk.exe", "magnify.exe", "narrator.exe", "displayswitch.exe", "atbroker.exe"}

func matchAccessibility(in *input) (hit, bool) {
	if in.lc != "" {
		lc := in.lc
		var target string
		for _, b := range accessibilityBins {
			if strings.Contains(lc, b) {
				target = b
			}
		}
		switch {
		case target == "":
			return hit{}, false
		case strings.Contains(lc, "image file execution options") && strings.Contains(lc, "debugger"):
			return hit{what: "set a debugger for " + target + " under Image File Execution Options: " + quoted(in.cmd, 160), object: target, raise: true}, true
		case (hasProg(lc, "copy") || hasProg(lc, "xcopy") || strings.Contains(lc, "copy-item") || hasProg(lc, "move")) && strings.Contains(lc, `system32\`+target):
			return hit{what: "replaced " + target + " in System32: " + quoted(in.cmd, 160), object: target, raise: true}, true
		}
		return hit{}, false
	}
	ev := in.ev
	if !registryEvent(ev) || !rawHas(ev, "image file execution options") {
		return hit{}, false
	}
	key := data(ev, "TargetObject")
	lk := strings.ToLower(key)
	if !strings.HasSuffix(lk, `\debugger`) && !strings.HasSuffix(lk, `\globalflag`) {
		return hit{}, false
	}
	acc := false
	for _, b := range accessibilityBins {
		if strings.Contains(lk, `\`+b+`\`) {
			acc = true
		}
	}
	return hit{what: "set " + key + " to " + quoted(data(ev, "Details"), 160) + " (Image File Execution Options hijack)", object: lk, raise: acc}, true
}

// autostartKeys are registry locations, beyond the Run keys, that make
// Windows load or start an attacker's code.
var autostartKeys = []string{`\winlogon\userinit`, `\winlogon\shell`, `\winlogon\notify`, `\appinit_dlls`, `\appcertdlls`, `\microsoft\netsh\`,
	`\control panel\desktop\scrnsave.exe`, `\control\lsa\security packages`, `\control\lsa\notification packages`, `\control\lsa\authentication packages`,
	`\control\print\monitors\`, `\session manager\bootexecute`, `\w32time\timeproviders\`, `\currentversion\runonceex`, `\explorer\shell folders\startup`,
	`\explorer\user shell folders\startup`, `\software\classes\clsid\`, `\installed components\`, `\silentprocessexit\`}

func matchAutostartRegistry(in *input) (hit, bool) {
	ev := in.ev
	if !registryEvent(ev) {
		return hit{}, false
	}
	key := data(ev, "TargetObject")
	lk := strings.ToLower(key)
	matched := ""
	for _, k := range autostartKeys {
		if strings.Contains(lk, k) {
			matched = k
			break
		}
	}
	if matched == "" {
		return hit{}, false
	}
	if matched == `\software\classes\clsid\` && !(strings.HasPrefix(lk, "hku") && (strings.Contains(lk, `\inprocserver32`) || strings.Contains(lk, `\localserver32`))) {
		return hit{}, false // COM hijacks are per-user server registrations
	}
	if baseIs(ev.Image, "msiexec.exe", "trustedinstaller.exe", "tiworker.exe") || containsFold(ev.Image, `\program files`) {
		return hit{}, false
	}
	value := data(ev, "Details")
	return hit{what: "set autostart location " + key + " to " + quoted(value, 160), object: lk, raise: containsAny(strings.ToLower(value), launcherMarkers)}, true
}
