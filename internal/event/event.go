// Package event defines Event, the one record type every loupe stage reads.
//
// An Event carries the handful of fields detection needs as typed struct
// fields, filled in one pass by the source parsers, plus the original JSON
// object (Raw) for lazy access to anything else. No map is built per event.
package event

import (
	"strings"
	"time"

	"github.com/tidwall/gjson"
)

// Format says which input shape an event was read from.
type Format uint8

const (
	FormatUnknown    Format = iota
	FormatTimesketch        // Timesketch export, flat or nested (_source)
	FormatFalco             // Falco JSON alert
	FormatEVTX              // Windows event log record rendered as JSON
	FormatJSON              // any other JSON log
	FormatSyslog            // plain syslog / auth.log line
)

var formatNames = [...]string{"unknown", "timesketch", "falco", "evtx", "json", "syslog"}

func (f Format) String() string {
	if int(f) < len(formatNames) {
		return formatNames[f]
	}
	return "unknown"
}

// Event is one security log record.
type Event struct {
	ID     string // stable record id: _id when given, otherwise derived from the content
	Index  string // Timesketch _index or __ts_index_name, echoed back in findings
	Line   int64  // 1-based line number in its input
	Format Format
	Time   time.Time // zero when the record has no usable timestamp

	Host    string // computer / hostname the record is about
	User    string // acting (subject) user
	Message string // human-readable text: message, Falco output, syslog text

	// Windows event log.
	EventID  int
	Channel  string
	Provider string

	// Process activity (Sysmon 1, Security 4688, Falco proc.*, auditd).
	Image       string
	CommandLine string
	ParentImage string

	// Logon and account activity.
	TargetUser string // account acted upon (logon account, created user, group member)
	SrcIP      string
	LogonType  int
	Program    string // syslog program (sshd, sudo, CRON) or service name

	// Falco alert.
	Rule     string
	Priority string
	Tags     []string

	// Raw is the JSON object of the record (the _source object for the
	// Timesketch nested form); nil for syslog lines. DataPath is the gjson
	// path of the object holding the event-specific data fields
	// ("Event.EventData" for EVTX, "output_fields" for Falco), or "".
	Raw      []byte
	DataPath string
	// DataObject is the JSON text of the object at DataPath when the parser
	// located it (a view into Raw, or into the line Raw was cut from), so
	// readers of data fields need not find it again; "" otherwise.
	DataObject string
}

// Field returns the value at a gjson path inside Raw as a string.
func (e *Event) Field(path string) (string, bool) {
	if len(e.Raw) == 0 {
		return "", false
	}
	r := gjson.GetBytes(e.Raw, path)
	if !r.Exists() {
		return "", false
	}
	return r.String(), true
}

// Data returns an event-specific data field (EVTX EventData, Falco
// output_fields, or a top-level field for other JSON) by name.
func (e *Event) Data(name string) (string, bool) {
	if e.DataObject != "" {
		r := gjson.Get(e.DataObject, gjsonEscape(name))
		return r.String(), r.Exists()
	}
	if e.DataPath == "" {
		return e.Field(gjsonEscape(name))
	}
	return e.Field(e.DataPath + "." + gjsonEscape(name))
}

// gjsonEscape escapes the characters gjson treats as path syntax so a field
// name such as "proc.cmdline" is looked up as one key.
func gjsonEscape(name string) string {
	need := false
	for i := 0; i < len(name); i++ {
		switch name[i] {
		case '.', '*', '?', '|', '#', '@', '\\':
			need = true
		}
	}
	if !need {
		return name
	}
	b := make([]byte, 0, len(name)+4)
	for i := 0; i < len(name); i++ {
		switch name[i] {
		case '.', '*', '?', '|', '#', '@', '\\':
			b = append(b, '\\')
		}
		b = append(b, name[i])
	}
	return string(b)
}

// Summary is a short one-line description of the event for evidence lists:
// its command line or message, or for a Windows record without either the
// channel, event id and the account, address and service it names.
func (e *Event) Summary() string {
	switch {
	case e.CommandLine != "":
		return e.CommandLine
	case e.Message != "":
		return e.Message
	case e.EventID == 0:
		return ""
	}
	s := e.Channel + " event " + itoa(e.EventID)
	var parts []string
	if e.TargetUser != "" {
		parts = append(parts, "account "+e.TargetUser)
	}
	if e.SrcIP != "" && e.SrcIP != "-" {
		parts = append(parts, "from "+e.SrcIP)
	}
	if e.LogonType != 0 {
		parts = append(parts, "logon type "+itoa(e.LogonType))
	}
	if e.Program != "" {
		parts = append(parts, "service "+e.Program)
	}
	if e.Image != "" {
		parts = append(parts, "process "+e.Image)
	}
	if len(parts) > 0 {
		s += ": " + strings.Join(parts, ", ")
	}
	return s
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	neg := n < 0
	if neg {
		n = -n
	}
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}
