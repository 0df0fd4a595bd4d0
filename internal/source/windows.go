package source

import (
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
)

// extraDataKey is the key under which event data that has no plain JSON
// object form (plaso xml_string, EventData.Data lists) is appended to Raw.
const extraDataKey = "loupe_event_data"

// evtx parses the Windows event rendered as JSON that starts at s[i]
// ({"System":{…},"EventData":{…}|"UserData":{…}}, the value of "Event") and
// returns the index just past it.
func (p *parser) evtx(s string, i int) int {
	return members(s, i, func(key string, v int) int {
		if v >= len(s) || s[v] != '{' {
			return -1
		}
		switch key {
		case "System":
			return p.system(s, v)
		case "EventData":
			return p.eventData(s, v, "Event.EventData")
		case "UserData":
			first := true
			return members(s, v, func(child string, cv int) int {
				if !first || cv >= len(s) || s[cv] != '{' {
					return -1
				}
				first = false
				p.ev.DataPath = "Event.UserData." + pathEscape(child)
				end := p.dataObject(s, cv)
				if end > cv && end <= len(s) {
					p.ev.DataObject = s[cv:end]
				}
				return end
			})
		}
		return -1
	})
}

func (p *parser) system(s string, i int) int {
	ev := p.ev
	return members(s, i, func(key string, v int) int {
		switch key {
		case "Provider", "EventID", "Channel", "Computer", "TimeCreated", "EventRecordID":
		default:
			return -1
		}
		end := skipValue(s, v)
		r := result(s, v, end)
		switch key {
		case "Provider":
			ev.Provider = text(attr(r, "Name"))
		case "EventID":
			ev.EventID = toInt(textOf(r))
		case "Channel":
			ev.Channel = text(r)
		case "Computer":
			ev.Host = text(r)
		case "TimeCreated":
			if t, ok := timeOf(attr(r, "SystemTime")); ok {
				ev.Time = t
			}
		case "EventRecordID":
			p.recordID = text(r)
		}
		return end
	})
}

// attr reads an XML attribute as the JSON converters render it:
// {"#attributes":{"Name":…}}, {"@Name":…} or {"Name":…}; a string stands
// for itself.
func attr(v gjson.Result, name string) gjson.Result {
	if !v.IsObject() {
		return v
	}
	var out gjson.Result
	v.ForEach(func(k, x gjson.Result) bool {
		switch {
		case k.Str == "#attributes" && x.IsObject():
			out = attr(x, name)
		case k.Str == name || (len(k.Str) == len(name)+1 && k.Str[0] == '@' && k.Str[1:] == name):
			out = x
		}
		return !out.Exists()
	})
	return out
}

// textOf reads the text content of an XML element rendered as JSON.
func textOf(v gjson.Result) gjson.Result {
	if !v.IsObject() {
		return v
	}
	var out gjson.Result
	v.ForEach(func(k, x gjson.Result) bool {
		if k.Str == "#text" || k.Str == "Value" || k.Str == "value" {
			out = x
			return false
		}
		return true
	})
	return out
}

func toInt(v gjson.Result) int {
	switch v.Type {
	case gjson.Number:
		return int(v.Int())
	case gjson.String:
		n, _ := strconv.Atoi(strings.TrimSpace(v.Str))
		return n
	}
	return 0
}

// eventData reads the EventData object at s[i], either a plain object of
// named values or a {"Data":[{"@Name":…,"#text":…},…]} list, which is
// normalised into an appended object so Event.Data works the same way. It
// returns the index just past the object.
func (p *parser) eventData(s string, i int, path string) int {
	list := false
	end := members(s, i, func(key string, v int) int {
		if key != "Data" {
			if !isDataField(key) {
				return -1
			}
			end := skipValue(s, v)
			p.dataValue(key, rawString(s[v:end]))
			return end
		}
		end := skipValue(s, v)
		r := result(s, v, end)
		switch {
		case r.IsObject():
			list = true
			p.dataItem(r)
		case r.IsArray():
			list = true
			r.ForEach(func(_, item gjson.Result) bool {
				p.dataItem(item)
				return true
			})
		}
		return end
	})
	if !list {
		p.ev.DataPath = path
		if i = skipWS(s, i); end > i && end <= len(s) {
			p.ev.DataObject = s[i:end]
		}
	}
	return end
}

func (p *parser) dataItem(item gjson.Result) {
	if !item.IsObject() {
		return
	}
	name := text(attr(item, "Name"))
	if name == "" {
		return
	}
	val := textOf(item).String()
	p.addExtra(name, val)
	p.dataValue(name, val)
}

// dataObject reads the mapped fields of a flat object of named values at
// s[i] and returns the index just past it.
func (p *parser) dataObject(s string, i int) int {
	return members(s, i, func(key string, v int) int {
		if !isDataField(key) {
			return -1
		}
		end := skipValue(s, v)
		p.dataValue(key, rawString(s[v:end]))
		return end
	})
}

// isDataField reports whether dataValue maps the field name.
func isDataField(name string) bool {
	switch name {
	case "CommandLine", "Image", "NewProcessName", "SourceImage", "ParentImage", "ParentProcessName",
		"TargetUserName", "SubjectUserName", "User", "SourceUser", "IpAddress", "SourceIp", "LogonType", "ServiceName":
		return true
	}
	return false
}

// dataValue maps one Windows event data field onto the typed event fields.
// Sysmon 8/10 have no Image; their SourceImage (the acting process) is used.
func (p *parser) dataValue(name, val string) {
	ev := p.ev
	switch name {
	case "CommandLine":
		ev.CommandLine = val
	case "Image", "NewProcessName":
		ev.Image = val
	case "SourceImage":
		p.sourceImage = val
	case "ParentImage", "ParentProcessName":
		ev.ParentImage = val
	case "TargetUserName":
		ev.TargetUser = val
	case "SubjectUserName", "User":
		ev.User = val
	case "SourceUser": // Sysmon 8/10: the user of the acting process
		if ev.User == "" {
			ev.User = val
		}
	case "IpAddress", "SourceIp":
		if val != "-" && val != "" {
			ev.SrcIP = val
		}
	case "LogonType":
		ev.LogonType, _ = strconv.Atoi(strings.TrimSpace(val))
	case "ServiceName":
		p.serviceName = val
	}
}

// finishWindows applies what depends on more than one field.
func (p *parser) finishWindows() {
	ev := p.ev
	if ev.Image == "" && p.sourceImage != "" {
		ev.Image = p.sourceImage
	}
	if p.serviceName != "" && (ev.EventID == 7045 || ev.EventID == 4697) {
		ev.Program = p.serviceName
	}
	if p.extraData != nil {
		// Raw becomes a copy of the record with the collected data appended
		// as one more member: {…,"loupe_event_data":{…}}.
		raw := make([]byte, 0, len(p.raw)+len(p.extraData)+len(extraDataKey)+8)
		raw = append(raw, p.raw[:len(p.raw)-1]...)
		raw = append(raw, `,"`+extraDataKey+`":{`...)
		raw = append(raw, p.extraData...)
		raw = append(raw, "}}"...)
		ev.Raw = raw
		ev.DataPath = extraDataKey
		ev.DataObject = str(raw[len(raw)-len(p.extraData)-3 : len(raw)-1])
	}
}

// addExtra appends "name":"value" to the normalised event data object.
func (p *parser) addExtra(name, val string) {
	if len(p.extraData) > 0 {
		p.extraData = append(p.extraData, ',')
	}
	p.extraData = appendJSONString(p.extraData, name)
	p.extraData = append(p.extraData, ':')
	p.extraData = appendJSONString(p.extraData, val)
}

// winlogbeat fills an ECS record shipped by winlogbeat / Elastic Agent.
func (p *parser) winlogbeat(r *record) {
	p.generic(r)
	ev := p.ev
	r.winlog.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "event_id":
			ev.EventID = toInt(v)
		case "channel":
			ev.Channel = text(v)
		case "provider_name":
			ev.Provider = text(v)
		case "computer_name":
			ev.Host = text(v)
		case "record_id":
			p.recordID = text(v)
		case "event_data":
			if v.IsObject() {
				ev.DataPath, ev.DataObject = "winlog.event_data", v.Raw
				p.dataObject(v.Raw, 0)
			}
		case "user_data":
			if v.IsObject() && ev.DataPath == "" {
				ev.DataPath, ev.DataObject = "winlog.user_data", v.Raw
				p.dataObject(v.Raw, 0)
			}
		}
		return true
	})
}

// plasoEVTX adds the Windows fields of a plaso windows:evtx:record, whose
// event data is only present as XML in xml_string.
func (p *parser) plasoEVTX(r *record) {
	ev := p.ev
	ev.EventID = toInt(r.eventIdentifier)
	ev.Provider = text(r.sourceName)
	ev.Channel = text(r.channel)
	if h := text(r.computerName); h != "" {
		ev.Host = h
	}
	p.recordID = text(r.recordNumber)
	xml := r.xmlString.Str
	if xml == "" {
		return
	}
	if ev.Channel == "" {
		ev.Channel = xmlElementText(xml, "Channel")
	}
	if ev.Host == "" {
		ev.Host = xmlElementText(xml, "Computer")
	}
	scanXMLData(xml, func(name, val string) {
		p.addExtra(name, val)
		p.dataValue(name, val)
	})
	if p.extraData == nil {
		p.extraData = []byte{} // an empty object still marks where data lives
	}
}

func pathEscape(s string) string {
	if !strings.ContainsAny(s, ".*?|#@\\") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '.', '*', '?', '|', '#', '@', '\\':
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string literal.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
