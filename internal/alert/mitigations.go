package alert

// plan is a set of mitigations by horizon.
type plan struct{ immediate, short, long []string }

// byTechnique holds mitigations for specific ATT&CK techniques. A
// sub-technique without an entry falls back to its parent.
var byTechnique = map[string]plan{
	"T1611": { // Escape to Host
		immediate: []string{
			"Stop or isolate the pod/container (cordon the node, apply a deny-all NetworkPolicy) and snapshot it for forensics before deleting it",
			"Check the node for signs of escape: new host processes, changed /etc, new kernel modules, writes to the container runtime",
		},
		short: []string{
			"Drop privileged: true, hostPath mounts of /, /etc, /proc, /var/run/docker.sock and added capabilities (SYS_ADMIN, SYS_PTRACE, SYS_MODULE) from the workload spec",
			"Run the container as a non-root user with allowPrivilegeEscalation: false and a read-only root filesystem",
		},
		long: []string{
			"Enforce Pod Security Admission at the restricted level on application namespaces, with explicit exemptions only for system agents",
			"Use user namespaces or a sandboxed runtime (gVisor, Kata) for untrusted workloads and keep the container runtime and kernel patched",
		},
	},
	"T1059": { // Command and Scripting Interpreter
		immediate: []string{
			"Identify who opened the shell: match the time with Kubernetes audit logs (pods/exec) or docker exec events and confirm with that person",
			"If nobody claims it, isolate the container and capture its process tree, open connections and recent file changes",
		},
		short: []string{
			"Restrict pods/exec and pods/attach RBAC to a small on-call group and require just-in-time access",
			"Remove shells and package managers from production images (distroless or scratch bases)",
		},
		long: []string{
			"Replace interactive debugging with ephemeral debug containers that are audited",
			"Alert on shells spawned by web servers, databases and other services that should never start one",
		},
	},
	"T1003": { // OS Credential Dumping
		immediate: []string{
			"Find the process and its parent that read the credential file and kill it if it is not a known tool",
			"Rotate the passwords of local accounts whose hashes were exposed",
		},
		short: []string{
			"Make sure containers do not mount host /etc and do not run as root, so /etc/shadow is not readable",
			"Add the legitimate reader to the rule's trusted list if this was a known tool",
		},
		long: []string{
			"Prefer key- or SSO-based login and disable local password authentication where possible",
			"Monitor credential files with file integrity monitoring",
		},
	},
	"T1552": { // Unsecured Credentials
		immediate: []string{
			"Treat the credentials the process could reach as compromised: revoke and rotate keys, tokens and cloud access keys",
			"Review cloud and API audit logs for use of those credentials from unknown addresses",
		},
		short: []string{
			"Move secrets out of files and environment variables into a secret manager with short-lived credentials",
			"Block pod access to the instance metadata service (IMDSv2 with hop limit 1, or a NetworkPolicy to 169.254.169.254)",
		},
		long: []string{
			"Use workload identity (IRSA, GKE Workload Identity) instead of node credentials",
			"Run secret scanning on images and repositories",
		},
	},
	"T1070": { // Indicator Removal
		immediate: []string{
			"Preserve what is left: copy remaining logs and take a snapshot of the host or container",
			"Reconstruct the activity from central logs (Loki/VictoriaLogs), which the attacker could not delete",
		},
		short: []string{
			"Ship logs off the host in real time so local deletion loses nothing",
			"Make log directories append-only (chattr +a) where supported",
		},
		long: []string{
			"Alert on log truncation and history deletion across the fleet",
		},
	},
	"T1105": { // Ingress Tool Transfer
		immediate: []string{
			"Hash and collect the new binary, then kill its process and isolate the container",
			"Find where it came from: the download URL or the process that wrote it",
		},
		short: []string{
			"Run containers with a read-only root filesystem so new executables cannot be dropped",
			"Restrict egress to known destinations with NetworkPolicy or an egress proxy",
		},
		long: []string{
			"Enforce image immutability: rebuild and redeploy instead of changing running containers",
			"Admit only signed images from trusted registries",
		},
	},
	"T1496": { // Resource Hijacking
		immediate: []string{
			"Kill the mining process and isolate the workload; block the pool address at the egress",
			"Find the entry point: exposed dashboards, leaked credentials or a vulnerable image",
		},
		short: []string{
			"Rebuild the workload from a clean image and rotate any credentials it held",
			"Set CPU limits and alert on sustained CPU saturation",
		},
		long: []string{
			"Deny egress to mining pool ports and Stratum by default",
			"Scan images for known miners before deployment",
		},
	},
	"T1046": { // Network Service Discovery
		immediate: []string{
			"Confirm whether the scan was an approved troubleshooting session; if not, isolate the container",
			"List the targets that were probed and check them for follow-up connections",
		},
		short: []string{
			"Remove network tools (nmap, nc, tcpdump) from production images",
			"Apply default-deny NetworkPolicies so a compromised pod cannot reach other services",
		},
		long: []string{
			"Segment workloads by namespace and sensitivity",
		},
	},
	"T1071": { // Application Layer Protocol
		immediate: []string{
			"Identify the destination and block it if it is not a known service",
			"Capture the process, its command line and its connections",
		},
		short: []string{
			"Restrict egress with NetworkPolicy or an egress gateway and allow-list destinations",
		},
		long: []string{
			"Route outbound traffic through an inspecting proxy and alert on new destinations",
		},
	},
	"T1548": { // Abuse Elevation Control Mechanism
		immediate: []string{
			"Find the file that got the setuid/setgid bit, remove the bit and keep a copy for analysis",
		},
		short: []string{
			"Mount writable paths with nosuid and run containers with allowPrivilegeEscalation: false",
		},
		long: []string{
			"Audit setuid binaries regularly and keep the list minimal",
		},
	},
	"T1543": { // Create or Modify System Process
		immediate: []string{
			"Diff the written file against the package or image version and restore it if it was changed",
			"Check for new services, cron entries, ld.so.preload and authorized_keys written at the same time",
		},
		short: []string{
			"Mount /etc and binary directories read-only in containers",
		},
		long: []string{
			"Use file integrity monitoring on system directories and immutable images",
		},
	},
	"T1053": { // Scheduled Task/Job
		immediate: []string{
			"Read the new or changed cron entry and remove it if it is not known",
		},
		short: []string{
			"Restrict who may edit crontabs (cron.allow) and monitor /etc/cron* and /var/spool/cron",
		},
		long: []string{
			"Manage scheduled jobs only through configuration management or Kubernetes CronJobs",
		},
	},
	"T1098": { // Account Manipulation
		immediate: []string{
			"Review the added key, role binding or permission and revoke it if it was not approved",
		},
		short: []string{
			"Require review for RBAC changes and authorized_keys changes",
		},
		long: []string{
			"Manage SSH keys and cluster roles centrally, with expiry",
		},
	},
	"T1547": { // Boot or Logon Autostart Execution (kernel modules)
		immediate: []string{
			"List loaded modules (lsmod) and compare with the baseline; isolate the host if an unknown module is present",
		},
		short: []string{
			"Block module loading from containers (no SYS_MODULE) and set kernel.modules_disabled where possible",
		},
		long: []string{
			"Use Secure Boot with module signing enforcement",
		},
	},
	"T1068": { // Exploitation for Privilege Escalation
		immediate: []string{
			"Isolate the host: a successful exploit gives root",
			"Check for new root-owned files and processes started after the exploit attempt",
		},
		short: []string{
			"Patch the vulnerable component (sudo, polkit, kernel) on all hosts",
		},
		long: []string{
			"Track and patch local privilege-escalation CVEs on a fixed schedule",
		},
	},
	"T1609": { // Container Administration Command
		immediate: []string{
			"Confirm the exec/attach with the user named in the Kubernetes audit log",
		},
		short: []string{
			"Limit pods/exec to an on-call group and log every session",
		},
		long: []string{
			"Use audited ephemeral debug containers instead of exec",
		},
	},
	"T1610": { // Deploy Container
		immediate: []string{
			"Inspect the new pod/container spec (image, privileges, mounts) and delete it if it was not expected",
		},
		short: []string{
			"Allow only images from trusted registries with an admission policy (Kyverno, Gatekeeper)",
		},
		long: []string{
			"Deploy only through GitOps so unexpected workloads stand out",
		},
	},
	"T1613": { // Container and Resource Discovery
		immediate: []string{
			"Check which service account the pod used and what it could read or change",
		},
		short: []string{
			"Set automountServiceAccountToken: false where the API is not needed and trim the service account's RBAC",
		},
		long: []string{
			"Restrict API server access from pods with NetworkPolicy",
		},
	},
	"T1485": { // Data Destruction
		immediate: []string{
			"Stop the deleting process and isolate the host to limit the damage",
			"Check that backups of the affected data are intact",
		},
		short: []string{
			"Restore the deleted data from backup and find how the attacker got the access",
		},
		long: []string{
			"Keep immutable, off-host backups and test restores",
		},
	},
	"T1190": { // Exploit Public-Facing Application
		immediate: []string{
			"Isolate the exposed service and collect its logs and recent requests",
		},
		short: []string{
			"Patch the application and its dependencies; put a WAF rule in front of the vulnerable path",
		},
		long: []string{
			"Run public services with least privilege and no outbound access they do not need",
		},
	},
}

// byTactic holds generic mitigations per ATT&CK tactic short name, used to
// fill up when the technique has few or none.
var byTactic = map[string]plan{
	"execution": {
		immediate: []string{"Identify the process tree and the user behind it; kill the process if it is not legitimate"},
		short:     []string{"Remove unneeded interpreters and tools from images"},
		long:      []string{"Adopt minimal base images and runtime allow-lists for processes"},
	},
	"persistence": {
		immediate: []string{"Find and remove the persistence mechanism (file, job, account or key) after preserving a copy"},
		short:     []string{"Rebuild the affected host or container from a trusted image"},
		long:      []string{"Use immutable infrastructure and file integrity monitoring"},
	},
	"privilege-escalation": {
		immediate: []string{"Isolate the workload and assume the attacker may hold root"},
		short:     []string{"Remove privileges the workload does not need (capabilities, root user, host mounts)"},
		long:      []string{"Enforce least privilege with admission policies"},
	},
	"defense-evasion": {
		immediate: []string{"Preserve evidence from the host before it is cleaned further"},
		short:     []string{"Forward logs and audit events off the host in real time"},
		long:      []string{"Alert on tampering with logs, history and security tools"},
	},
	"credential-access": {
		immediate: []string{"Rotate the credentials that could have been read"},
		short:     []string{"Move secrets to a secret manager with short-lived credentials"},
		long:      []string{"Prefer workload identity over static secrets"},
	},
	"discovery": {
		immediate: []string{"Check whether the discovery was followed by access to the discovered systems"},
		short:     []string{"Restrict what the workload can see (NetworkPolicy, RBAC)"},
		long:      []string{"Segment the network and keep inventories so scans stand out"},
	},
	"lateral-movement": {
		immediate: []string{"Isolate the source and check the destination hosts for new sessions"},
		short:     []string{"Restrict SSH and remote access to bastion hosts"},
		long:      []string{"Segment the network and require MFA for remote access"},
	},
	"command-and-control": {
		immediate: []string{"Block the remote address at the firewall or egress gateway"},
		short:     []string{"Allow-list egress destinations per workload"},
		long:      []string{"Inspect outbound traffic and alert on new destinations"},
	},
	"exfiltration": {
		immediate: []string{"Block the destination and estimate what data left"},
		short:     []string{"Restrict egress and upload tools in production"},
		long:      []string{"Add data-loss monitoring on sensitive stores"},
	},
	"impact": {
		immediate: []string{"Stop the process and isolate the affected system"},
		short:     []string{"Restore from known-good images and backups"},
		long:      []string{"Keep immutable backups and resource limits"},
	},
	"initial-access": {
		immediate: []string{"Isolate the exposed service and review its recent requests"},
		short:     []string{"Patch and restrict exposure of the service"},
		long:      []string{"Reduce the public attack surface and add a WAF"},
	},
}

// generic applies when nothing else is known.
var generic = plan{
	immediate: []string{"Review the process, user and container in the alert and confirm with the owner whether the activity was expected"},
	short:     []string{"Tune or allow-list the rule if the activity is confirmed benign"},
	long:      []string{"Keep Falco rules and images up to date and review alerts of this rule regularly"},
}

const maxPerHorizon = 4

// mitigationsFor assembles the mitigations of a technique and tactic.
func mitigationsFor(technique, tactic string) Mitigations {
	var plans []plan
	if p, ok := byTechnique[technique]; ok {
		plans = append(plans, p)
	} else if i := len(technique); i > 5 {
		if p, ok := byTechnique[technique[:5]]; ok {
			plans = append(plans, p)
		}
	}
	if p, ok := byTactic[tactic]; ok {
		plans = append(plans, p)
	}
	if len(plans) < 2 { // the generic advice only when little is known
		plans = append(plans, generic)
	}
	var m Mitigations
	for _, p := range plans {
		m.Immediate = addUpTo(m.Immediate, p.immediate)
		m.ShortTerm = addUpTo(m.ShortTerm, p.short)
		m.LongTerm = addUpTo(m.LongTerm, p.long)
	}
	return m
}

func addUpTo(dst, src []string) []string {
	for _, s := range src {
		if len(dst) >= maxPerHorizon {
			break
		}
		dup := false
		for _, d := range dst {
			dup = dup || d == s
		}
		if !dup {
			dst = append(dst, s)
		}
	}
	return dst
}
