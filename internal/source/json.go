package source

import (
	"github.com/loupe-sec/loupe/internal/event"
	"github.com/tidwall/gjson"
)

// parse turns one owned, non-blank line into an event. buf is not shared
// with anyone else; the event's strings point into it.
func parse(buf []byte, lineNo int64, opt *Options) (*event.Event, error) {
	buf = trimSpace(buf)
	ev := &event.Event{Line: lineNo}
	if buf[0] != '{' {
		ev.Format = event.FormatSyslog
		if err := parseSyslog(ev, str(buf)); err != nil {
			return nil, err
		}
		analyzeMessage(ev, ev.Program, ev.Message)
		ev.ID = hashID(buf, opt.Name, lineNo, buf)
		return ev, nil
	}
	if !validJSON(str(buf)) {
		fixed, ok := replaceNonFinite(buf)
		if !ok || !validJSON(str(fixed)) {
			return nil, ErrInvalidJSON
		}
		buf = fixed
	}
	p := parser{ev: ev}
	var top, inner record
	top.scan(&p, str(buf), 0)

	rec, raw := &top, buf
	timesketch := top.index.Exists() || top.tsIndex.Exists() || top.tsTimeline.Exists()
	if top.source.IsObject() {
		inner.scan(&p, str(buf), top.source.Index)
		rec = &inner
		raw = buf[top.source.Index : top.source.Index+len(top.source.Raw)]
		timesketch = true
	}
	p.raw = raw[:len(raw):len(raw)]
	ev.Raw = p.raw
	p.record(rec)
	if timesketch {
		ev.Format = event.FormatTimesketch
	}
	if ev.Index = top.index.Str; ev.Index == "" {
		ev.Index = top.tsIndex.Str
	}
	switch {
	case top.id.Type == gjson.String && top.id.Str != "":
		ev.ID = top.id.Str
	case top.id.Type == gjson.Number:
		ev.ID = top.id.Raw
	case p.recordID != "" && ev.Host != "":
		w := newIDWriter(buf)
		w.string(ev.Host)
		w.byte(':')
		w.string(ev.Channel)
		w.byte(':')
		w.string(p.recordID)
		ev.ID = w.done()
	default:
		ev.ID = hashID(buf, opt.Name, lineNo, buf)
	}
	return ev, nil
}

// parser holds the state of parsing one JSON record.
type parser struct {
	ev  *event.Event
	raw []byte // the record object inside the line (the line, or its _source)

	recordID    string // EventRecordID / record_id / record_number, for derived ids
	serviceName string
	sourceImage string
	extraData   []byte // "loupe_event_data" object built from XML or a Data list
}

// record fills the event from a record's top-level fields.
func (p *parser) record(r *record) {
	switch {
	case r.event.IsObject(): // parsed while scanning
		p.ev.Format = event.FormatEVTX
	case r.winlog.IsObject():
		p.ev.Format = event.FormatEVTX
		p.winlogbeat(r)
	case r.rule.Exists() && r.priority.Exists() && r.output.Exists():
		p.ev.Format = event.FormatFalco
		p.falco(r)
	default:
		p.ev.Format = event.FormatJSON
		p.generic(r)
		if r.dataType.Str == "windows:evtx:record" {
			p.plasoEVTX(r)
		}
	}
	p.finishWindows()
}

// record collects the top-level values of one JSON object that any format
// reads. Values are gjson.Results pointing into the line.
type record struct {
	// Timesketch.
	id, index, tsIndex, tsTimeline, source gjson.Result
	// EVTX as JSON, winlogbeat.
	event, winlog gjson.Result
	// Falco.
	rule, priority, output, outputFields, tags gjson.Result
	// plaso.
	dataType, eventIdentifier, sourceName, channel, xmlString, recordNumber, computerName gjson.Result
	// Generic JSON: message, time, host, user, address, process, program.
	message, msg, log, messageUpper, text, body                        gjson.Result
	timestamp, atTimestamp, time, ts, datetime, date, eventTime        gjson.Result
	realtime                                                           gjson.Result
	host, hostname, hostDotName, computer, computerUpper, journaldHost gjson.Result
	user, username, userDotName, userIdentity                          gjson.Result
	srcIP, sourceDotIP, sourceIPAddress, clientIP, remoteAddr          gjson.Result
	process, processDotCommandLine, cmdline, commandLine               gjson.Result
	program, ident, syslogIdentifier, comm, reporter                   gjson.Result
}

// scan reads the members of the object at s[i] in one pass and returns the
// index just past it. An EVTX "Event" object is parsed into p's event on
// the way, so it is not read twice.
func (r *record) scan(p *parser, s string, i int) int {
	return members(s, i, func(key string, v int) int {
		if v >= len(s) {
			return -1
		}
		var slot *gjson.Result
		switch key {
		case "_source":
			slot = &r.source
		case "Event":
			if s[v] == '{' {
				end := p.evtx(s, v)
				r.event = result(s, v, end)
				return end
			}
			return -1
		case "source":
			// Falco and plaso use "source" for a plain string; ECS for an object.
			if s[v] != '{' {
				return -1
			}
			end := skipValue(s, v)
			r.sourceDotIP = result(s, v, end).Get("ip")
			return end
		case "_id":
			slot = &r.id
		case "_index":
			slot = &r.index
		case "__ts_index_name":
			slot = &r.tsIndex
		case "__ts_timeline_id":
			slot = &r.tsTimeline
		case "winlog":
			slot = &r.winlog
		case "rule":
			slot = &r.rule
		case "priority":
			slot = &r.priority
		case "output":
			slot = &r.output
		case "output_fields":
			slot = &r.outputFields
		case "tags":
			slot = &r.tags
		case "data_type":
			slot = &r.dataType
		case "event_identifier":
			slot = &r.eventIdentifier
		case "source_name":
			slot = &r.sourceName
		case "channel":
			slot = &r.channel
		case "xml_string":
			slot = &r.xmlString
		case "record_number":
			slot = &r.recordNumber
		case "computer_name":
			slot = &r.computerName
		case "message":
			slot = &r.message
		case "msg":
			slot = &r.msg
		case "log":
			slot = &r.log
		case "MESSAGE":
			slot = &r.messageUpper
		case "text":
			slot = &r.text
		case "body":
			slot = &r.body
		case "timestamp":
			slot = &r.timestamp
		case "@timestamp":
			slot = &r.atTimestamp
		case "time":
			slot = &r.time
		case "ts":
			slot = &r.ts
		case "datetime":
			slot = &r.datetime
		case "date":
			slot = &r.date
		case "eventTime":
			slot = &r.eventTime
		case "__REALTIME_TIMESTAMP":
			slot = &r.realtime
		case "host":
			slot = &r.host
		case "hostname":
			slot = &r.hostname
		case "host.name":
			slot = &r.hostDotName
		case "computer":
			slot = &r.computer
		case "Computer":
			slot = &r.computerUpper
		case "_HOSTNAME":
			slot = &r.journaldHost
		case "user":
			slot = &r.user
		case "username":
			slot = &r.username
		case "user.name":
			slot = &r.userDotName
		case "userIdentity":
			slot = &r.userIdentity
		case "src_ip":
			slot = &r.srcIP
		case "source.ip":
			slot = &r.sourceDotIP
		case "sourceIPAddress":
			slot = &r.sourceIPAddress
		case "client_ip":
			slot = &r.clientIP
		case "remote_addr":
			slot = &r.remoteAddr
		case "process":
			slot = &r.process
		case "process.command_line":
			slot = &r.processDotCommandLine
		case "cmdline":
			slot = &r.cmdline
		case "command_line":
			slot = &r.commandLine
		case "program":
			slot = &r.program
		case "ident":
			slot = &r.ident
		case "SYSLOG_IDENTIFIER":
			slot = &r.syslogIdentifier
		case "_COMM":
			slot = &r.comm
		case "reporter":
			slot = &r.reporter
		}
		if slot == nil {
			return -1
		}
		end := skipValue(s, v)
		*slot = result(s, v, end)
		return end
	})
}

// text returns the first of rs that holds a non-empty, meaningful string
// ("-" is how many logs write "none").
func text(rs ...gjson.Result) string {
	for _, r := range rs {
		switch r.Type {
		case gjson.String:
			if r.Str != "" && r.Str != "-" {
				return r.Str
			}
		case gjson.Number:
			return r.Raw
		}
	}
	return ""
}

// named returns r itself when it is a string, or its "name" member when it
// is an object (ECS host / user objects).
func named(r gjson.Result, key string) gjson.Result {
	if r.IsObject() {
		return r.Get(key)
	}
	return r
}

// generic fills the fields of any JSON log from common field names, then
// reads a syslog-style authentication message if there is one.
func (p *parser) generic(r *record) {
	ev := p.ev
	log := r.log
	if log.IsObject() {
		log = gjson.Result{}
	}
	ev.Message = text(r.message, r.msg, log, r.messageUpper, r.text, r.body)
	for _, t := range [...]gjson.Result{r.timestamp, r.atTimestamp, r.time, r.ts, r.datetime, r.date, r.eventTime, r.realtime} {
		if t.Exists() {
			if tm, ok := timeOf(t); ok {
				ev.Time = tm
				break
			}
		}
	}
	ev.Host = text(named(r.host, "name"), r.hostname, r.hostDotName, r.computer, r.computerUpper, r.computerName, r.journaldHost)
	if ev.Host == "" && r.host.IsObject() {
		ev.Host = text(r.host.Get("hostname"))
	}
	ev.User = text(named(r.user, "name"), r.username, r.userDotName, named(r.userIdentity, "userName"))
	ev.SrcIP = text(r.srcIP, r.sourceDotIP, r.sourceIPAddress, r.clientIP, r.remoteAddr)
	if r.process.IsObject() {
		ev.CommandLine = text(r.process.Get("command_line"))
		ev.Image = text(r.process.Get("executable"))
		ev.ParentImage = text(r.process.Get("parent.executable"))
	}
	if ev.CommandLine == "" {
		ev.CommandLine = text(r.processDotCommandLine, r.cmdline, r.commandLine)
	}
	ev.Program = text(r.program, r.ident, r.syslogIdentifier, r.comm, r.reporter)
	msg := ev.Message
	if b := text(r.body); b != "" {
		msg = b
	}
	analyzeMessage(ev, ev.Program, msg)
}

// falco fills a Falco alert.
func (p *parser) falco(r *record) {
	ev := p.ev
	ev.Rule = r.rule.String()
	ev.Priority = r.priority.String()
	ev.Message = r.output.String()
	ev.Host = text(r.hostname)
	if t, ok := timeOf(r.time); ok {
		ev.Time = t
	}
	if r.tags.IsArray() {
		n := 0
		r.tags.ForEach(func(_, _ gjson.Result) bool { n++; return true })
		ev.Tags = make([]string, 0, n)
		r.tags.ForEach(func(_, v gjson.Result) bool {
			ev.Tags = append(ev.Tags, v.String())
			return true
		})
	}
	if !r.outputFields.IsObject() {
		return
	}
	p.ev.DataPath, p.ev.DataObject = "output_fields", r.outputFields.Raw
	var exepath, name, sip, rip string
	eachMember(r.outputFields.Raw, func(k, v string) {
		switch k {
		case "proc.cmdline":
			ev.CommandLine = rawString(v)
		case "proc.exepath":
			exepath = rawString(v)
		case "proc.name":
			name = rawString(v)
		case "proc.pname":
			ev.ParentImage = rawString(v)
		case "user.name", "ka.user.name":
			ev.User = rawString(v)
		case "fd.sip":
			sip = rawString(v)
		case "fd.rip":
			rip = rawString(v)
		}
	})
	ev.Image = exepath
	if ev.Image == "" {
		ev.Image = name
	}
	ev.SrcIP = sip
	if sip == "" {
		ev.SrcIP = rip
	}
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}
