// Package falco knows Falco's rule names: for each default, incubating and
// sandbox rule of the upstream rule files (and the custom rules SIB ships), the
// ATT&CK technique and tactic it points at, a one-line description of what an
// attacker achieves when the rule fires for real, and how often it fires for
// benign reasons. Both the detector (which trusts Falco alerts in a log stream)
// and the alert analyzer read this one table.
package falco

import "strings"

// Likelihood of a false positive.
const (
	FPLow    = "low"
	FPMedium = "medium"
	FPHigh   = "high"
)

// Rule is what loupe knows about one Falco rule.
type Rule struct {
	Name      string   // as Falco spells it
	Technique string   // ATT&CK technique id, T1059.004
	Tactic    string   // ATT&CK tactic short name, execution
	Vector    string   // what an attacker achieves, one sentence
	FP        string   // false-positive likelihood: low, medium or high
	Causes    []string // common benign causes
}

// Lookup finds a rule by name, ignoring case and surrounding space.
func Lookup(name string) (Rule, bool) {
	r, ok := byName[strings.ToLower(strings.TrimSpace(name))]
	return r, ok
}

// Rules returns every known rule, in table order.
func Rules() []Rule {
	out := make([]Rule, len(rules))
	copy(out, rules)
	return out
}

var byName = func() map[string]Rule {
	m := make(map[string]Rule, len(rules))
	for _, r := range rules {
		m[strings.ToLower(r.Name)] = r
	}
	return m
}()

// Common benign causes, shared by related rules.
var (
	causesShell = []string{
		"An administrator debugging with kubectl exec or docker exec",
		"Entrypoint or wrapper scripts that start a shell",
		"CI/CD jobs or init containers running shell steps",
	}
	causesSensitiveRead = []string{
		"PAM, sshd, sudo or login tools not in the trusted list of this Falco version",
		"Configuration management (Ansible, Puppet, Chef) auditing accounts",
		"Backup or vulnerability-scanning agents reading /etc",
	}
	causesPackage = []string{
		"Image builds or package upgrades run inside a long-lived container",
		"Configuration management installing packages",
		"Unattended security updates",
	}
	causesNetTool = []string{
		"Network troubleshooting by an administrator",
		"Monitoring or health-check scripts using nc, curl or nmap",
		"Debug sidecars (netshoot and similar images)",
	}
	causesPrivileged = []string{
		"CNI, CSI, monitoring and security agents (Falco itself, Cilium, node exporters) that need privileges",
		"System DaemonSets in kube-system",
	}
	causesWriteEtc = []string{
		"Package installation or upgrade (dpkg, rpm, apk) updating configuration",
		"Configuration management writing managed files",
		"ldconfig refreshing /etc/ld.so.cache during updates",
	}
	causesLogs = []string{
		"logrotate or journald vacuuming logs",
		"Cleanup scripts in CI images",
	}
	causesNetwork = []string{
		"New legitimate service endpoints not yet in the allow list",
		"Package mirrors, telemetry or license servers",
	}
	causesK8sAdmin = []string{
		"Cluster administrators or operators performing routine changes",
		"GitOps controllers (Argo CD, Flux) and Helm deployments",
	}
	causesCloudMeta = []string{
		"Cloud SDKs inside workloads fetching instance credentials by design",
		"Node agents (CNI, log shippers) querying instance metadata",
	}
	causesDrift = []string{
		"Applications that download plugins or JIT-compile code at runtime",
		"Debugging sessions copying tools into a running container",
	}
	causesRecon = []string{
		"Administrators inspecting a container interactively",
		"Diagnostic scripts collecting system information",
	}
	causesNone = []string{
		"Rarely benign; confirm with the workload owner before dismissing",
	}
)

// rules is the table. Techniques and tactics must exist in internal/attack
// (checked by a test).
var rules = []Rule{
	// Shells and execution.
	{"Terminal shell in container", "T1059.004", "execution", "An interactive shell was opened inside a container, giving hands-on-keyboard access to the workload", FPMedium, causesShell},
	{"Run shell untrusted", "T1059.004", "execution", "A shell was spawned by a process that should never start one, typical of command injection or a web shell", FPLow, []string{"Applications that legitimately shell out (health checks, wrappers) but are not yet allow-listed"}},
	{"System user interactive", "T1059.004", "execution", "A system (non-login) account ran an interactive program, a sign of a hijacked service account", FPLow, []string{"Maintenance scripts run as a service user with su -s"}},
	{"Netcat Remote Code Execution in Container", "T1059.004", "execution", "netcat was started with options that execute a program, the classic bind or reverse shell", FPLow, causesNone},
	{"Redirect STDOUT/STDIN to Network Connection in Container", "T1059.004", "execution", "A process wired its standard input/output to a network socket, the hallmark of a reverse shell", FPLow, causesNone},
	{"Execution from /dev/shm", "T1059.004", "execution", "A program was executed from /dev/shm, a memory-backed directory attackers use to stage payloads", FPLow, []string{"Some browsers or JIT runtimes mapping code from shared memory"}},
	{"Reverse Shell Spawned", "T1059.004", "execution", "A shell connected back to a remote listener, handing an attacker interactive control", FPLow, causesNone},
	{"Unexpected spawned process", "T1059", "execution", "A process outside the workload's expected set was started", FPMedium, []string{"Application updates that introduce new helper binaries"}},
	{"DB program spawned process", "T1190", "initial-access", "A database server started a child process, typical of SQL injection leading to command execution", FPLow, []string{"Database maintenance hooks or archive commands (archive_command in PostgreSQL)"}},
	{"Java Process Class File Download", "T1190", "initial-access", "A Java process downloaded a class file, the pattern of Log4Shell-style JNDI exploitation", FPLow, []string{"Application servers loading remote plugins by design"}},
	{"Launch Code Compiler Tool in Container", "T1027.004", "defense-evasion", "A compiler ran inside a container, used to build exploits or tools on the target", FPMedium, []string{"Images that compile native extensions at start (pip, npm, gem)"}},
	{"Decoding Payload in Container", "T1140", "defense-evasion", "base64 or a similar tool decoded data inside a container, often an obfuscated payload being unpacked", FPMedium, []string{"Scripts decoding configuration or certificates from environment variables"}},
	{"Basic Interactive Reconnaissance", "T1082", "discovery", "Commands such as whoami, id, uname or hostname ran interactively, the first steps after gaining a shell", FPMedium, causesRecon},

	// Credential access.
	{"Read sensitive file untrusted", "T1003.008", "credential-access", "An untrusted program read a credential file such as /etc/shadow, to crack or reuse password hashes", FPMedium, causesSensitiveRead},
	{"Read sensitive file trusted after startup", "T1003.008", "credential-access", "A trusted server process read credential files long after start-up, suggesting it was taken over", FPMedium, causesSensitiveRead},
	{"Directory traversal monitored file read", "T1003.008", "credential-access", "A file under /etc was read through a ../ path, typical of a path-traversal exploit in a web service", FPLow, causesNone},
	{"Create Symlink Over Sensitive Files", "T1003.008", "credential-access", "A symlink was pointed at a sensitive file to read it through a less protected path", FPLow, causesNone},
	{"Create Hardlink Over Sensitive Files", "T1003.008", "credential-access", "A hard link to a sensitive file was created to read or keep it outside its protected location", FPLow, causesNone},
	{"Search Private Keys or Passwords", "T1552.001", "credential-access", "find or grep searched the filesystem for private keys or passwords", FPMedium, []string{"Security audits or secret scanners", "Administrators locating their own keys"}},
	{"Find AWS Credentials", "T1552.001", "credential-access", "A process searched for AWS credential files to steal cloud access keys", FPLow, []string{"Cloud tooling checking its own configuration"}},
	{"Read ssh information", "T1552.004", "credential-access", "A process read SSH keys or configuration, to reuse keys for lateral movement", FPMedium, []string{"ssh, scp or git over SSH run by an administrator"}},
	{"Read environment variable from /proc files", "T1552", "credential-access", "A process read other processes' environment from /proc, where tokens and passwords often live", FPMedium, []string{"Monitoring agents and debuggers inspecting processes"}},
	{"Contact EC2 Instance Metadata Service From Container", "T1552.005", "credential-access", "A container queried the EC2 metadata service, the usual way to steal the node's IAM credentials", FPMedium, causesCloudMeta},
	{"Contact cloud metadata service from container", "T1552.005", "credential-access", "A container queried the cloud metadata service to obtain instance credentials", FPMedium, causesCloudMeta},
	{"K8s Secret Get Successfully", "T1552.007", "credential-access", "A Kubernetes secret was read through the API", FPHigh, causesK8sAdmin},
	{"Packet socket created in container", "T1040", "discovery", "A raw packet socket was opened in a container to sniff traffic or spoof packets", FPMedium, []string{"Network diagnostics (tcpdump) or CNI components"}},

	// Persistence.
	{"Write below etc", "T1543", "persistence", "A file under /etc was created or changed, which can plant persistence (services, cron, ld.so.preload) or weaken security settings", FPMedium, causesWriteEtc},
	{"Write below root", "T1543", "persistence", "A file was written directly under / or /root, a place attackers use to drop tools and persistence", FPMedium, []string{"Applications writing state to the root home directory"}},
	{"Write below binary dir", "T1543", "persistence", "A file was written into a binary directory, replacing or adding system programs", FPMedium, causesPackage},
	{"Write below monitored dir", "T1543", "persistence", "A file was written into a monitored system directory", FPMedium, causesPackage},
	{"Write below rpm database", "T1554", "persistence", "The RPM database was modified outside of rpm, hiding tampered packages", FPLow, causesPackage},
	{"Schedule Cron Jobs", "T1053.003", "persistence", "A cron job was created or changed to run code on a schedule", FPMedium, []string{"Package installation adding cron files", "Administrators editing crontabs"}},
	{"Modify Shell Configuration File", "T1546.004", "persistence", "A shell start-up file (.bashrc, /etc/profile) was changed so that code runs at every login", FPMedium, []string{"Users customising their shell", "Installers adding PATH entries"}},
	{"Read Shell Configuration File", "T1083", "discovery", "A non-shell program read shell start-up files, looking for aliases, paths or secrets", FPMedium, []string{"Editors and IDE tooling"}},
	{"User mgmt binaries", "T1136.001", "persistence", "User-management tools (useradd, usermod, passwd) ran, which can create a backdoor account", FPMedium, []string{"Provisioning scripts and package post-install hooks creating service accounts"}},
	{"Adding ssh keys to authorized_keys", "T1098.004", "persistence", "A key was added to authorized_keys, giving an attacker lasting SSH access", FPMedium, []string{"Administrators or cloud-init installing keys"}},
	{"Linux Kernel Module Injection Detected", "T1547.006", "persistence", "A kernel module was loaded from a container or unusual process, which can install a rootkit", FPLow, []string{"Drivers loaded by privileged system agents"}},
	{"Update Package Repository", "T1072", "execution", "Package repository sources were changed, which can point the system at attacker-controlled packages", FPMedium, causesPackage},
	{"Launch Package Management Process in Container", "T1072", "execution", "A package manager ran inside a running container, changing its contents after deployment", FPMedium, causesPackage},
	{"Package management process launched", "T1072", "execution", "A package manager ran, installing or changing software", FPHigh, causesPackage},
	{"Backdoored library loaded into SSHD (CVE-2024-3094)", "T1554", "persistence", "sshd loaded a backdoored liblzma (xz utils CVE-2024-3094), giving remote code execution before authentication", FPLow, causesNone},
	{"Drop and execute new binary in container", "T1105", "command-and-control", "A binary that was not in the image was written and executed in the container", FPLow, causesDrift},
	{"Container Drift Detected (chmod)", "T1105", "command-and-control", "A file in the container was made executable after start, i.e. new code was introduced", FPMedium, causesDrift},
	{"Container Drift Detected (open+create)", "T1105", "command-and-control", "An executable file was created inside a running container", FPMedium, causesDrift},
	{"Launch Remote File Copy Tools in Container", "T1105", "command-and-control", "wget, curl, scp or rsync ran inside a container to bring tools in or data out", FPMedium, causesNetTool},
	{"Launch Ingress Remote File Copy Tools in Container", "T1105", "command-and-control", "A download tool ran inside a container to fetch attacker tooling", FPMedium, causesNetTool},

	// Privilege escalation and container escape.
	{"Launch Privileged Container", "T1611", "privilege-escalation", "A privileged container started; it has full access to the host's devices and kernel and can escape trivially", FPMedium, causesPrivileged},
	{"Launch Excessively Capable Container", "T1611", "privilege-escalation", "A container started with dangerous capabilities (SYS_ADMIN, SYS_MODULE ...) that allow escaping to the host", FPMedium, causesPrivileged},
	{"Launch Sensitive Mount Container", "T1611", "privilege-escalation", "A container mounted a sensitive host path (/, /etc, the Docker socket), a direct route to the host", FPMedium, causesPrivileged},
	{"Container Run as Root User", "T1611", "privilege-escalation", "A container runs as root, so any compromise inside it starts with the strongest foothold for escape", FPHigh, []string{"Images that were never configured with a non-root USER"}},
	{"Container Running as Root", "T1611", "privilege-escalation", "A container runs as root, so any compromise inside it starts with the strongest foothold for escape", FPHigh, []string{"Images that were never configured with a non-root USER"}},
	{"Change thread namespace", "T1611", "privilege-escalation", "A process changed namespace (setns), which can move it out of its container into the host", FPMedium, causesPrivileged},
	{"Change namespace privileges via unshare", "T1611", "privilege-escalation", "unshare was used to gain new privileges in a namespace, a step in several container escapes", FPLow, causesNone},
	{"Debugfs Launched in Privileged Container", "T1611", "privilege-escalation", "debugfs ran in a privileged container to read or write the host filesystem directly", FPLow, causesNone},
	{"Mount Launched in Privileged Container", "T1611", "privilege-escalation", "mount ran in a privileged container, typically to mount the host's disk and escape", FPLow, causesPrivileged},
	{"Detect release_agent File Container Escapes", "T1611", "privilege-escalation", "The cgroup release_agent was written, a known technique to run commands on the host from a container", FPLow, causesNone},
	{"Modify Container Entrypoint", "T1611", "privilege-escalation", "The container runtime binary was opened for writing from a container (runc CVE-2019-5736), to take over the host", FPLow, causesNone},
	{"Set Setuid or Setgid bit", "T1548.001", "privilege-escalation", "The setuid/setgid bit was set on a file so that it runs with its owner's privileges", FPMedium, causesPackage},
	{"Non sudo setuid", "T1548.001", "privilege-escalation", "A process changed its user id without sudo, an unexpected privilege change", FPMedium, []string{"Services dropping privileges at start"}},
	{"Sudo Potential Privilege Escalation", "T1068", "privilege-escalation", "sudo was run with arguments that exploit CVE-2021-3156 (Baron Samedit) to become root", FPLow, causesNone},
	{"Polkit Local Privilege Escalation Vulnerability (CVE-2021-4034)", "T1068", "privilege-escalation", "pkexec was run with an empty argument list, exploiting PwnKit (CVE-2021-4034) to become root", FPLow, causesNone},
	{"Unprivileged Delegation of Page Faults Handling to a Userspace Process", "T1068", "privilege-escalation", "userfaultfd was used by an unprivileged process, a building block of kernel exploits", FPLow, causesNone},
	{"Potential Local Privilege Escalation via Environment Variables Misuse", "T1574.006", "privilege-escalation", "A setuid program ran with loader variables (LD_PRELOAD, GLIBC_TUNABLES) set, to hijack it and gain root", FPLow, causesNone},
	{"PTRACE attached to process", "T1055.008", "privilege-escalation", "A process attached to another with ptrace, to inject code or read its memory", FPMedium, []string{"Debuggers (gdb, strace) used by developers"}},

	// Defense evasion.
	{"Clear Log Activities", "T1070.002", "defense-evasion", "Log files were truncated or deleted to hide activity", FPMedium, causesLogs},
	{"Delete or rename shell history", "T1070.003", "defense-evasion", "Shell history was deleted or renamed to hide the commands that were run", FPLow, []string{"Users clearing history by habit", "Image build steps"}},
	{"Delete Bash History", "T1070.003", "defense-evasion", "Bash history was deleted to hide the commands that were run", FPLow, []string{"Users clearing history by habit", "Image build steps"}},
	{"Create Hidden Files or Directories", "T1564.001", "defense-evasion", "Hidden files or directories were created in system locations to stash tools", FPMedium, []string{"Applications creating dot-directories for their state"}},
	{"Create files below dev", "T1564", "defense-evasion", "A regular file was created under /dev, a hiding place that few people look at", FPLow, causesNone},
	{"Modify binary dirs", "T1222.002", "defense-evasion", "A file in a binary directory was renamed or removed, to replace system tools", FPMedium, causesPackage},
	{"Mkdir binary dirs", "T1222.002", "defense-evasion", "A directory was created inside a binary directory", FPMedium, causesPackage},
	{"Fileless execution via memfd_create", "T1620", "defense-evasion", "A program was executed from memory via memfd_create, leaving no file on disk", FPLow, []string{"Some runtimes (runc itself, certain JITs) use memfd legitimately"}},
	{"PTRACE anti-debug attempt", "T1622", "defense-evasion", "A process used ptrace on itself to block debugging, common in malware", FPLow, causesNone},
	{"BPF Program Not Profiled", "T1014", "defense-evasion", "An unexpected eBPF program was loaded, which can hide activity or implant a rootkit", FPMedium, []string{"Observability and networking agents (Cilium, Pixie, bcc tools)"}},
	{"Possible Backdoor using BPF", "T1014", "defense-evasion", "A BPF filter typical of BPFDoor-style passive backdoors was attached", FPLow, causesNone},
	{"Program run with disallowed http proxy env", "T1090", "command-and-control", "A program ran with an unexpected HTTP proxy setting, which can tunnel traffic through an attacker", FPMedium, []string{"Corporate proxy settings not yet in the allow list"}},

	// Discovery.
	{"Launch Suspicious Network Tool in Container", "T1046", "discovery", "A network scanning or probing tool (nmap, masscan, nc) ran inside a container", FPMedium, causesNetTool},
	{"Launch Suspicious Network Tool on Host", "T1046", "discovery", "A network scanning or probing tool ran on the host", FPMedium, causesNetTool},
	{"Contact K8S API Server From Container", "T1613", "discovery", "A container talked to the Kubernetes API server, to enumerate or change the cluster", FPMedium, []string{"Operators, controllers and service-mesh sidecars that use the API by design"}},

	// Lateral movement and command and control.
	{"Disallowed SSH Connection", "T1021.004", "lateral-movement", "An SSH connection was made to a host that is not allowed, possibly moving laterally", FPMedium, []string{"New bastion or jump hosts not yet allow-listed"}},
	{"Disallowed SSH Connection Non Standard Port", "T1571", "command-and-control", "An SSH connection on a non-standard port was made from a container, typical of tunnels to attacker infrastructure", FPLow, causesNone},
	{"Outbound Connection to Suspicious Port", "T1571", "command-and-control", "An outbound connection used a port associated with backdoors or tunnelling", FPMedium, causesNetwork},
	{"Outbound Connection to C2 Servers", "T1071", "command-and-control", "A connection was made to a known command-and-control address", FPLow, []string{"Stale or over-broad threat-intel lists"}},
	{"Unexpected outbound connection destination", "T1071", "command-and-control", "A process connected to a destination outside its expected set", FPMedium, causesNetwork},
	{"Unexpected inbound connection source", "T1133", "initial-access", "A connection arrived from a source outside the expected set", FPMedium, causesNetwork},
	{"Network Connection outside Local Subnet", "T1071", "command-and-control", "A container connected outside the local subnet", FPHigh, causesNetwork},
	{"Outbound or Inbound Traffic not to Authorized Server Process and Port", "T1071", "command-and-control", "A process used network endpoints outside its authorised ports", FPMedium, causesNetwork},
	{"System procs network activity", "T1071", "command-and-control", "A system binary that never uses the network opened a connection, often a trojanised tool", FPMedium, causesNetwork},
	{"Interpreted procs outbound network activity", "T1071", "command-and-control", "An interpreter (python, perl, ruby) opened an outbound connection, common for scripted implants", FPHigh, causesNetwork},
	{"Interpreted procs inbound network activity", "T1071", "command-and-control", "An interpreter accepted an inbound connection, as a bind shell would", FPHigh, causesNetwork},
	{"Unexpected UDP Traffic", "T1095", "command-and-control", "UDP traffic on an unexpected port, which can carry tunnels or covert channels", FPMedium, []string{"DNS, NTP or service discovery on non-standard ports"}},
	{"Unexpected K8s NodePort Connection", "T1133", "initial-access", "A NodePort service was reached from outside the allowed range, exposing a workload directly", FPMedium, causesNetwork},
	{"Data Exfiltration via Curl", "T1048", "exfiltration", "curl uploaded data to a remote host, a simple way to exfiltrate files", FPMedium, []string{"Applications posting reports or webhooks"}},
	{"Exfiltrating Artifacts via Kubernetes Control Plane", "T1041", "exfiltration", "kubectl cp or similar copied files out of a pod through the API server", FPMedium, causesK8sAdmin},

	// Impact.
	{"Detect crypto miners using the Stratum protocol", "T1496", "impact", "A process spoke the Stratum mining protocol: the host's CPU is being used to mine cryptocurrency", FPLow, causesNone},
	{"Detect outbound connections to common miner pool ports", "T1496", "impact", "A connection was made to a well-known mining pool port, a sign of cryptojacking", FPLow, []string{"Legitimate services that happen to use the same ports"}},
	{"Crypto Mining Activity", "T1496", "impact", "Cryptocurrency mining activity was detected on the host", FPLow, causesNone},
	{"Remove Bulk Data from Disk", "T1485", "impact", "Large amounts of data were wiped (shred, dd, rm -rf), destroying evidence or data", FPMedium, []string{"Decommissioning or disk re-provisioning", "Cleanup jobs"}},

	// Kubernetes audit rules.
	{"Attach/Exec Pod", "T1609", "execution", "Someone attached to or executed a command in a pod through the Kubernetes API", FPHigh, causesK8sAdmin},
	{"Create Privileged Pod", "T1610", "execution", "A privileged pod was created, which can take over its node", FPMedium, causesPrivileged},
	{"Create Sensitive Mount Pod", "T1611", "privilege-escalation", "A pod mounting sensitive host paths was created", FPMedium, causesPrivileged},
	{"Create HostNetwork Pod", "T1610", "execution", "A pod sharing the host network was created, exposing node traffic", FPMedium, causesPrivileged},
	{"Create Disallowed Pod", "T1610", "execution", "A pod with an image outside the allowed registries was created", FPMedium, causesK8sAdmin},
	{"Launch Disallowed Container", "T1610", "execution", "A container with an image outside the allowed list started", FPMedium, causesK8sAdmin},
	{"Pod Created in Kube Namespace", "T1610", "execution", "A pod was created in kube-system or kube-public, where it blends in with cluster components", FPMedium, causesK8sAdmin},
	{"Service Account Created in Kube Namespace", "T1136", "persistence", "A service account was created in a kube namespace, a place to hide a persistent identity", FPMedium, causesK8sAdmin},
	{"ClusterRole With Wildcard Created", "T1098", "persistence", "A cluster role granting wildcard permissions was created", FPMedium, causesK8sAdmin},
	{"Attach to cluster-admin Role", "T1098", "persistence", "A subject was bound to cluster-admin, gaining full control of the cluster", FPMedium, causesK8sAdmin},
	{"Anonymous Request Allowed", "T1078", "initial-access", "The API server allowed an anonymous request, so unauthenticated users can act on the cluster", FPLow, causesNone},
	{"Create NodePort Service", "T1133", "initial-access", "A NodePort service was created, exposing a workload on every node", FPMedium, causesK8sAdmin},
}
