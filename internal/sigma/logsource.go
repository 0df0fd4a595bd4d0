package sigma

import "strings"

// Logsource is a rule's logsource section.
type Logsource struct {
	Product  string `json:"product,omitempty"`
	Category string `json:"category,omitempty"`
	Service  string `json:"service,omitempty"`
}

func (l Logsource) String() string {
	var parts []string
	for _, s := range []string{l.Product, l.Category, l.Service} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	if len(parts) == 0 {
		return "any"
	}
	return strings.Join(parts, "/")
}

// sourceFilter is what a logsource requires of an event before the
// detection runs: its family, and for Windows the channel and event ids
// (the conditions pySigma's Windows pipelines add), for syslog the program.
type sourceFilter struct {
	fams     uint8    // bit per family
	channels []string // any of, ignoring case; nil = any
	eventIDs []int    // any of; nil = any
	programs []string // syslog programs, lower case; nil = any
}

func (f *sourceFilter) has(fam family) bool { return f.fams&(1<<fam) != 0 }

const (
	chSysmon     = "Microsoft-Windows-Sysmon/Operational"
	chPowerShell = "Microsoft-Windows-PowerShell/Operational"
	chPSClassic  = "Windows PowerShell"
)

// sysmonCategories are the Windows categories Sysmon logs, with their
// event ids; process_creation also comes from Security 4688.
var sysmonCategories = map[string][]int{
	"process_creation":         {1},
	"file_change":              {2},
	"network_connection":       {3},
	"sysmon_status":            {4, 16},
	"process_termination":      {5},
	"driver_load":              {6},
	"image_load":               {7},
	"create_remote_thread":     {8},
	"raw_access_thread":        {9},
	"process_access":           {10},
	"file_event":               {11},
	"registry_add":             {12},
	"registry_delete":          {12},
	"registry_set":             {13},
	"registry_rename":          {14},
	"registry_event":           {12, 13, 14},
	"create_stream_hash":       {15},
	"pipe_created":             {17, 18},
	"wmi_event":                {19, 20, 21},
	"dns_query":                {22},
	"file_delete":              {23, 26},
	"file_delete_detected":     {26},
	"clipboard_capture":        {24},
	"process_tampering":        {25},
	"file_block_executable":    {27},
	"file_block_shredding":     {28},
	"file_executable_detected": {29},
	"sysmon_error":             {255},
}

// windowsServices maps Windows logsource services to their channels.
var windowsServices = map[string][]string{
	"security":                             {"Security"},
	"system":                               {"System"},
	"application":                          {"Application"},
	"sysmon":                               {chSysmon},
	"powershell":                           {chPowerShell},
	"powershell-classic":                   {chPSClassic},
	"taskscheduler":                        {"Microsoft-Windows-TaskScheduler/Operational"},
	"wmi":                                  {"Microsoft-Windows-WMI-Activity/Operational"},
	"dns-server":                           {"DNS Server"},
	"dns-server-analytic":                  {"Microsoft-Windows-DNS-Server/Analytical"},
	"dns-client":                           {"Microsoft-Windows-DNS Client Events/Operational"},
	"driver-framework":                     {"Microsoft-Windows-DriverFrameworks-UserMode/Operational"},
	"firewall-as":                          {"Microsoft-Windows-Windows Firewall With Advanced Security/Firewall"},
	"bits-client":                          {"Microsoft-Windows-Bits-Client/Operational"},
	"windefend":                            {"Microsoft-Windows-Windows Defender/Operational"},
	"codeintegrity-operational":            {"Microsoft-Windows-CodeIntegrity/Operational"},
	"msexchange-management":                {"MSExchange Management"},
	"printservice-admin":                   {"Microsoft-Windows-PrintService/Admin"},
	"printservice-operational":             {"Microsoft-Windows-PrintService/Operational"},
	"smbclient-security":                   {"Microsoft-Windows-SmbClient/Security"},
	"smbclient-connectivity":               {"Microsoft-Windows-SmbClient/Connectivity"},
	"terminalservices-localsessionmanager": {"Microsoft-Windows-TerminalServices-LocalSessionManager/Operational"},
	"ntlm":                                 {"Microsoft-Windows-NTLM/Operational"},
	"dhcp":                                 {"Microsoft-Windows-DHCP-Server/Operational"},
	"openssh":                              {"OpenSSH/Operational"},
	"ldap":                                 {"Microsoft-Windows-LDAP-Client/Debug"},
	"lsa-server":                           {"Microsoft-Windows-LSA/Operational"},
	"appxdeployment-server":                {"Microsoft-Windows-AppXDeploymentServer/Operational"},
	"appxpackaging-om":                     {"Microsoft-Windows-AppxPackaging/Operational"},
	"applocker": {"Microsoft-Windows-AppLocker/MSI and Script", "Microsoft-Windows-AppLocker/EXE and DLL",
		"Microsoft-Windows-AppLocker/Packaged app-Deployment", "Microsoft-Windows-AppLocker/Packaged app-Execution"},
	"capi2": {"Microsoft-Windows-CAPI2/Operational"},
	"certificateservicesclient-lifecycle-system": {"Microsoft-Windows-CertificateServicesClient-Lifecycle-System/Operational"},
	"diagnosis-scripted":                         {"Microsoft-Windows-Diagnosis-Scripted/Operational"},
	"hyper-v-worker":                             {"Microsoft-Windows-Hyper-V-Worker"},
	"kernel-shimengine":                          {"Microsoft-Windows-Kernel-ShimEngine/Operational"},
	"microsoft-servicebus-client":                {"Microsoft-ServiceBus-Client"},
	"security-mitigations":                       {"Microsoft-Windows-Security-Mitigations/Kernel Mode", "Microsoft-Windows-Security-Mitigations/User Mode"},
	"shell-core":                                 {"Microsoft-Windows-Shell-Core/Operational"},
	"vhdmp":                                      {"Microsoft-Windows-VHDMP/Operational"},
	"appmodel-runtime":                           {"Microsoft-Windows-AppModel-Runtime/Admin"},
	"iis-configuration":                          {"Microsoft-IIS-Configuration/Operational"},
	"sysmon-operational":                         {chSysmon},
}

// windowsCategories beyond Sysmon: channel and event ids.
var windowsCategories = map[string]struct {
	channels []string
	ids      []int
}{
	"ps_module":                 {[]string{chPowerShell}, []int{4103}},
	"ps_script":                 {[]string{chPowerShell}, []int{4104}},
	"ps_classic_start":          {[]string{chPSClassic}, []int{400}},
	"ps_classic_provider_start": {[]string{chPSClassic}, []int{600}},
	"ps_classic_script":         {[]string{chPSClassic}, []int{800}},
}

var cloudProducts = map[string]bool{
	"aws": true, "azure": true, "gcp": true, "okta": true, "m365": true, "github": true,
	"google_workspace": true, "onelogin": true, "bitbucket": true, "cisco": true, "huawei": true,
	"fortios": true, "paloalto": true, "juniper": true, "zeek": true, "jvm": true, "python": true,
	"ruby_on_rails": true, "spring": true, "sql": true, "nodejs": true, "django": true, "modsecurity": true,
	"opencanary": true, "kubernetes": true, "qualys": true,
}

var linuxServicePrograms = map[string][]string{
	"sshd":        {"sshd"},
	"sudo":        {"sudo"},
	"cron":        {"cron", "crond", "anacron"},
	"su":          {"su"},
	"vsftpd":      {"vsftpd"},
	"clamav":      {"clamd", "freshclam"},
	"guacamole":   {"guacd"},
	"modsecurity": {"modsecurity"},
}

// filterOf derives the event filter of a logsource.
func filterOf(l Logsource) sourceFilter {
	product := strings.ToLower(l.Product)
	category := strings.ToLower(l.Category)
	service := strings.ToLower(l.Service)
	var f sourceFilter
	const (
		win    = 1 << famWindows
		falco  = 1 << famFalco
		syslog = 1 << famSyslog
		js     = 1 << famJSON
	)
	switch {
	case product == "windows":
		f.fams = win
		if chs, ok := windowsServices[service]; ok {
			f.channels = chs
		}
		if ids, ok := sysmonCategories[category]; ok {
			f.eventIDs = ids
			if category == "process_creation" {
				f.eventIDs = []int{1, 4688}
				f.channels = mergeChannels(f.channels, []string{chSysmon, "Security"})
			} else {
				f.channels = mergeChannels(f.channels, []string{chSysmon})
			}
		} else if wc, ok := windowsCategories[category]; ok {
			f.eventIDs = wc.ids
			f.channels = mergeChannels(f.channels, wc.channels)
		}
	case product == "linux" || product == "macos" || product == "unix":
		f.fams = falco | syslog | js
		switch {
		case category != "":
			f.fams = falco | js
			if category == "process_creation" || service == "auditd" {
				f.fams |= syslog
			}
		case service == "auditd":
			f.fams = syslog | js
		case service == "auth" || service == "syslog":
			f.fams = syslog | js
		case linuxServicePrograms[service] != nil:
			f.fams = syslog | js
			f.programs = linuxServicePrograms[service]
		}
	case cloudProducts[product]:
		f.fams = js
	case product == "":
		f.fams = falco | syslog | js
	default:
		f.fams = syslog | js
	}
	return f
}

// mergeChannels narrows channels by a service (when both are given the
// service wins if it is one of them; otherwise both lists are allowed).
func mergeChannels(service, category []string) []string {
	if service == nil {
		return category
	}
	return service
}

func (f *sourceFilter) channelOK(ch string) bool {
	if f.channels == nil {
		return true
	}
	for _, c := range f.channels {
		if strings.EqualFold(c, ch) {
			return true
		}
	}
	return false
}

func (f *sourceFilter) programOK(p string) bool {
	if f.programs == nil {
		return true
	}
	for _, c := range f.programs {
		if strings.EqualFold(c, p) {
			return true
		}
	}
	return false
}
