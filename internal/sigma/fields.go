package sigma

import (
	"fmt"
	"os"
	"strings"

	"github.com/loupe-sec/loupe/internal/event"
	"gopkg.in/yaml.v3"
)

// family is the shape of an event as far as field names go. A rule's
// fields are resolved once per family at compile time; each event is
// classified once.
type family uint8

const (
	famWindows family = iota // EVTX as JSON, winlogbeat/ECS, plaso Windows records
	famFalco                 // Falco alerts (output_fields)
	famSyslog                // syslog / auth.log lines, auditd text
	famJSON                  // any other JSON: cloud audit logs, auditd JSON, app logs
	numFam
)

var familyNames = [numFam]string{"windows", "falco", "syslog", "json"}

func familyOf(ev *event.Event) family {
	switch {
	case ev.Format == event.FormatFalco || (ev.Rule != "" && ev.Priority != "" && ev.Format != event.FormatEVTX):
		return famFalco
	case ev.Format == event.FormatEVTX || ev.Channel != "" || (ev.EventID != 0 && ev.Provider != ""):
		return famWindows
	case len(ev.Raw) == 0 || ev.Format == event.FormatSyslog:
		return famSyslog
	}
	return famJSON
}

// evField is a typed field of event.Event.
type evField uint8

const (
	efCommandLine evField = iota + 1
	efImage
	efParentImage
	efUser
	efTargetUser
	efHost
	efMessage
	efProgram
	efSrcIP
	efEventID
	efChannel
	efProvider
	efRule
	efPriority
	efLogonType
)

var evFieldNames = map[string]evField{
	"CommandLine": efCommandLine, "Image": efImage, "ParentImage": efParentImage, "User": efUser,
	"TargetUser": efTargetUser, "Host": efHost, "Message": efMessage, "Program": efProgram,
	"SrcIP": efSrcIP, "EventID": efEventID, "Channel": efChannel, "Provider": efProvider,
	"Rule": efRule, "Priority": efPriority, "LogonType": efLogonType,
}

type srcKind uint8

const (
	srcEvent srcKind = iota // a typed event.Event field
	srcPath                 // a gjson path into the record
	srcData                 // a key of the event's data object (EventData, output_fields)
	srcKV                   // key=value in the message text (auditd, syslog)
)

// fieldSource is one place a field's value may come from.
type fieldSource struct {
	kind srcKind
	ef   evField
	path string // srcPath: gjson path; srcData, srcKV: the key
	// srcPath of plain keys ("a" or "a.b.c"; no escapes, gjson syntax or
	// empty keys):
	// the first key and the rest, read without a walk of the whole record.
	plain      bool
	head, rest string
}

// accessor reads one Sigma field name from events. Its sources per family
// are tried in order; the first present value wins.
type accessor struct {
	id   int
	name string
	srcs [numFam][]fieldSource
}

// parseTarget reads a mapping target: "data:NAME" (a key of the event's
// data object), "kv:NAME" (NAME=value in the message), "event:NAME" (a
// typed event field) or a gjson path into the record.
func parseTarget(t string) (fieldSource, error) {
	switch {
	case strings.HasPrefix(t, "data:"):
		return fieldSource{kind: srcData, path: t[5:]}, nil
	case strings.HasPrefix(t, "kv:"):
		if t[3:] == "" {
			return fieldSource{}, fmt.Errorf("empty kv: target")
		}
		return fieldSource{kind: srcKV, path: t[3:]}, nil
	case strings.HasPrefix(t, "event:"):
		ef, ok := evFieldNames[t[6:]]
		if !ok {
			return fieldSource{}, fmt.Errorf("unknown event field %q", t[6:])
		}
		return fieldSource{kind: srcEvent, ef: ef}, nil
	case t == "":
		return fieldSource{}, fmt.Errorf("empty target")
	}
	return rpath(t), nil
}

// escapeKey escapes gjson path syntax so name is looked up as one key.
func escapeKey(name string) string { return escapeGJSON(name, true) }

// escapePath escapes gjson syntax except dots, which keep nesting:
// "requestParameters.userName" reads the nested CloudTrail member.
func escapePath(name string) string { return escapeGJSON(name, false) }

func escapeGJSON(name string, dots bool) string {
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		switch c := name[i]; c {
		case '.':
			if dots {
				b.WriteByte('\\')
			}
		case '*', '?', '|', '#', '@', '\\', '!', '=', '<', '>', '%':
			b.WriteByte('\\')
		}
		b.WriteByte(name[i])
	}
	return b.String()
}

// Mapping overrides the built-in field mapping, the idea of pySigma's
// processing pipelines reduced to what an evaluator needs. Each family
// ("windows", "falco", "syslog", "json", or "all") maps Sigma field names
// to targets tried in order; see parseTarget for the target forms.
//
//	all:
//	  CommandLine: [process.command_line, event:CommandLine]
//	windows:
//	  User: data:SubjectUserName
//
// A "placeholders" section gives the values of %name% placeholders for
// the expand modifier:
//
//	placeholders:
//	  admin_accounts: [Administrator, "adm_*"]
type Mapping struct {
	fams         [numFam]map[string][]fieldSource
	Placeholders map[string][]string
}

// LoadMapping reads a user mapping file.
func LoadMapping(path string) (*Mapping, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("field mapping: %w", err)
	}
	m, err := ParseMapping(data)
	if err != nil {
		return nil, fmt.Errorf("field mapping %s: %w", path, err)
	}
	return m, nil
}

// ParseMapping parses a mapping document.
func ParseMapping(data []byte) (*Mapping, error) {
	var raw map[string]map[string]any
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return nil, err
	}
	m := &Mapping{}
	for famName, fields := range raw {
		var fams []family
		if famName == "placeholders" {
			m.Placeholders = map[string][]string{}
			for name, v := range fields {
				switch t := v.(type) {
				case string:
					m.Placeholders[name] = []string{t}
				case []any:
					for _, x := range t {
						m.Placeholders[name] = append(m.Placeholders[name], fmt.Sprint(x))
					}
				default:
					return nil, fmt.Errorf("placeholders.%s: want a value or a list of values", name)
				}
			}
			continue
		}
		if famName == "all" {
			fams = []family{famWindows, famFalco, famSyslog, famJSON}
		} else {
			i := indexOf(familyNames[:], famName)
			if i < 0 {
				return nil, fmt.Errorf("unknown format %q (want all, windows, falco, syslog or json)", famName)
			}
			fams = []family{family(i)}
		}
		for name, v := range fields {
			var targets []string
			switch t := v.(type) {
			case string:
				targets = []string{t}
			case []any:
				for _, x := range t {
					s, ok := x.(string)
					if !ok {
						return nil, fmt.Errorf("%s.%s: targets must be strings", famName, name)
					}
					targets = append(targets, s)
				}
			default:
				return nil, fmt.Errorf("%s.%s: want a target or a list of targets", famName, name)
			}
			var srcs []fieldSource
			for _, t := range targets {
				s, err := parseTarget(t)
				if err != nil {
					return nil, fmt.Errorf("%s.%s: %w", famName, name, err)
				}
				srcs = append(srcs, s)
			}
			for _, f := range fams {
				if m.fams[f] == nil {
					m.fams[f] = map[string][]fieldSource{}
				}
				if famName != "all" || m.fams[f][name] == nil {
					m.fams[f][name] = srcs
				}
			}
		}
	}
	return m, nil
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

func typed(f evField) fieldSource { return fieldSource{kind: srcEvent, ef: f} }
func data(k string) fieldSource   { return fieldSource{kind: srcData, path: k} }
func rpath(p string) fieldSource {
	s := fieldSource{kind: srcPath, path: p, plain: p != "" && !strings.ContainsAny(p, "\\*?|#@!") &&
		p[0] != '.' && p[len(p)-1] != '.' && !strings.Contains(p, "..")} // empty segments: gjson's reading
	if s.plain {
		s.head, s.rest, _ = strings.Cut(p, ".")
	}
	return s
}
func kv(k string) fieldSource             { return fieldSource{kind: srcKV, path: k} }
func srcs(s ...fieldSource) []fieldSource { return s }

// windowsSystem are the System members of a Windows record, read from the
// record (evtx_dump shape) when not typed.
var windowsSystem = map[string]bool{
	"Level": true, "Task": true, "Opcode": true, "Keywords": true, "EventRecordID": true,
	"Version": true, "Correlation": true, "Execution": true, "Security": true,
}

// builtin is the built-in mapping of one Sigma field name for one family.
func builtin(f family, name string) []fieldSource {
	switch f {
	case famWindows:
		switch name {
		case "EventID":
			return srcs(typed(efEventID))
		case "Channel":
			return srcs(typed(efChannel))
		case "Provider_Name", "Provider":
			return srcs(typed(efProvider), data(name))
		case "Computer", "ComputerName":
			return srcs(typed(efHost), data(name))
		// Unnamed <Data> items (classic PowerShell, Defender, ...) stay a
		// list under EventData.Data.
		case "Data":
			return srcs(data(name), rpath("Event.EventData.Data"), rpath("winlog.event_data.Data"))
		// Security 4688 names the process fields differently from Sysmon 1.
		case "Image":
			return srcs(data("Image"), data("NewProcessName"))
		case "ParentImage":
			return srcs(data("ParentImage"), data("ParentProcessName"))
		}
		if windowsSystem[name] {
			return srcs(rpath("Event.System."+escapeKey(name)), rpath("winlog."+escapeKey(strings.ToLower(name))), data(name))
		}
		return srcs(data(name))
	case famFalco:
		switch name {
		case "CommandLine":
			return srcs(typed(efCommandLine))
		case "Image":
			return srcs(data("proc.exepath"), typed(efImage))
		case "ParentImage":
			return srcs(data("proc.pexepath"), typed(efParentImage))
		case "ParentCommandLine":
			return srcs(data("proc.pcmdline"))
		case "User", "user":
			return srcs(data("user.name"), typed(efUser))
		case "CurrentDirectory":
			return srcs(data("proc.cwd"))
		case "ProcessId":
			return srcs(data("proc.pid"))
		case "ParentProcessId":
			return srcs(data("proc.ppid"))
		case "TargetFilename":
			return srcs(data("fd.name"))
		case "DestinationIp":
			return srcs(data("fd.rip"), data("fd.sip"))
		case "DestinationPort":
			return srcs(data("fd.rport"), data("fd.sport"))
		case "SourceIp":
			return srcs(data("fd.lip"), data("fd.cip"))
		case "DestinationHostname":
			return srcs(data("fd.sip.name"))
		case "Computer", "Hostname", "hostname":
			return srcs(typed(efHost))
		}
		return srcs(data(name), rpath(escapePath(name)))
	case famSyslog:
		switch name {
		case "Message", "message", "msg":
			return srcs(typed(efMessage))
		case "Computer", "Hostname", "hostname", "host":
			return srcs(typed(efHost))
		case "User", "user", "USER":
			return srcs(typed(efUser), kv(name))
		case "program", "Program", "ProcessName", "service":
			return srcs(typed(efProgram))
		case "CommandLine":
			return srcs(typed(efCommandLine))
		case "Image": // auditd SYSCALL records name the executable exe=
			return srcs(kv("exe"))
		}
		return srcs(kv(name))
	}
	// famJSON: the name as a nested path, then as one literal key, then
	// the typed fields the generic parser fills.
	out := srcs(rpath(escapePath(name)))
	if strings.Contains(name, ".") {
		out = append(out, rpath(escapeKey(name)))
	}
	switch name {
	case "CommandLine":
		out = append(out, typed(efCommandLine))
	case "Image":
		out = append(out, typed(efImage))
	case "ParentImage":
		out = append(out, typed(efParentImage))
	case "User":
		out = append(out, typed(efUser))
	case "Computer", "Hostname", "hostname":
		out = append(out, typed(efHost))
	}
	return append(out, data(name))
}

// accessors interns the accessors of a rule set by field name.
type accessors struct {
	mapping *Mapping
	byName  map[string]*accessor
	list    []*accessor
}

func (as *accessors) get(name string) *accessor {
	if a, ok := as.byName[name]; ok {
		return a
	}
	a := &accessor{id: len(as.list), name: name}
	for f := range numFam {
		if as.mapping != nil {
			if m := as.mapping.fams[f][name]; m != nil {
				a.srcs[f] = m
				continue
			}
		}
		a.srcs[f] = builtin(family(f), name)
	}
	if as.byName == nil {
		as.byName = map[string]*accessor{}
	}
	as.byName[name] = a
	as.list = append(as.list, a)
	return a
}
