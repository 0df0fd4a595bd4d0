package source

import (
	"strings"

	"github.com/loupe-sec/loupe/internal/event"
)

// analyzeMessage reads the account and process facts out of a Unix
// authentication message (sshd, PAM, sudo, cron, useradd/usermod/gpasswd)
// and fills the event fields that are still empty. program is the syslog
// program name when known; the patterns themselves are specific enough to
// be matched without it.
func analyzeMessage(ev *event.Event, program, msg string) {
	if len(msg) < 8 {
		return
	}
	for _, r := range messageRules {
		if i := strings.Index(msg, r.marker); i >= 0 {
			if r.program != "" && program != "" && !strings.EqualFold(program, r.program) {
				continue
			}
			if r.apply(ev, msg, i, i+len(r.marker)) {
				return
			}
		}
	}
}

// messageRule matches a marker substring and extracts fields around it.
// apply gets the marker's start and end offsets and reports whether it
// recognised the message.
type messageRule struct {
	marker  string
	program string // when set and the program is known, it must match
	apply   func(ev *event.Event, msg string, start, end int) bool
}

var messageRules = []messageRule{
	// sshd: "Failed password for [invalid user ]USER from IP port N ssh2",
	// "Accepted publickey for USER from IP port N ssh2: …".
	{marker: "Failed password for ", apply: userFromIP},
	{marker: "Failed publickey for ", apply: userFromIP},
	{marker: "Failed keyboard-interactive/pam for ", apply: userFromIP},
	{marker: "Failed none for ", apply: userFromIP},
	{marker: "Accepted password for ", apply: userFromIP},
	{marker: "Accepted publickey for ", apply: userFromIP},
	{marker: "Accepted keyboard-interactive/pam for ", apply: userFromIP},
	{marker: "Invalid user ", apply: userFromIP},         // "Invalid user USER from IP port N"
	{marker: "authenticating user ", apply: userSpaceIP}, // "Connection closed by authenticating user USER IP port N"
	{marker: "Disconnected from invalid user ", apply: userSpaceIP},
	// PAM: "authentication failure; logname= uid=0 … rhost=IP  user=USER".
	{marker: "authentication failure;", apply: pamFailure},
	// sudo: "USER : TTY=pts/0 ; PWD=/ ; USER=root ; COMMAND=/bin/bash".
	{marker: " ; USER=", apply: sudoCommand},
	// cron: "(root) CMD (curl … | sh)".
	{marker: ") CMD (", apply: cronCommand},
	// useradd: "new user: name=bob, UID=1001, …".
	{marker: "new user: name=", apply: upToComma},
	// usermod: "add 'bob' to group 'sudo'", "add 'bob' to shadow group 'sudo'".
	{marker: "add '", apply: quotedToGroup},
	// userdel / usermod: "delete user 'bob'", "change user 'bob' password".
	{marker: "delete user '", apply: quoted},
	{marker: "change user '", apply: quoted},
	// gpasswd: "user bob added by root to group sudo".
	{marker: " added by ", program: "gpasswd", apply: gpasswdAdd},
	// passwd: "password changed for bob".
	{marker: "password changed for ", apply: restWord},
}

func setIfEmpty(dst *string, v string) {
	if *dst == "" && v != "" {
		*dst = v
	}
}

func userFromIP(ev *event.Event, msg string, _, end int) bool {
	rest := strings.TrimPrefix(msg[end:], "invalid user ")
	i := strings.Index(rest, " from ")
	if i < 0 {
		return false
	}
	setIfEmpty(&ev.TargetUser, rest[:i])
	setIfEmpty(&ev.SrcIP, word(rest[i+len(" from "):]))
	return true
}

func userSpaceIP(ev *event.Event, msg string, _, end int) bool {
	rest := msg[end:]
	user := word(rest)
	if user == "" {
		return false
	}
	setIfEmpty(&ev.TargetUser, user)
	setIfEmpty(&ev.SrcIP, word(strings.TrimPrefix(rest[len(user):], " ")))
	return true
}

func pamFailure(ev *event.Event, msg string, _, end int) bool {
	rest := msg[end:]
	setIfEmpty(&ev.SrcIP, keyValue(rest, "rhost="))
	setIfEmpty(&ev.TargetUser, keyValue(rest, "user="))
	return true
}

// keyValue finds "key=value" where key starts a space-separated word and
// returns value (up to the next space).
func keyValue(s, key string) string {
	for off := 0; ; {
		i := strings.Index(s[off:], key)
		if i < 0 {
			return ""
		}
		i += off
		if i == 0 || s[i-1] == ' ' || s[i-1] == ';' {
			return word(s[i+len(key):])
		}
		off = i + len(key)
	}
}

func sudoCommand(ev *event.Event, msg string, start, end int) bool {
	colon := strings.Index(msg, " : ")
	if colon < 0 || colon > start {
		return false
	}
	setIfEmpty(&ev.User, strings.TrimSpace(msg[:colon]))
	target := msg[end:]
	if j := strings.Index(target, " ; "); j >= 0 {
		target = target[:j]
	}
	setIfEmpty(&ev.TargetUser, strings.TrimSpace(target))
	if j := strings.Index(msg[end:], "COMMAND="); j >= 0 {
		setIfEmpty(&ev.CommandLine, strings.TrimSpace(msg[end+j+len("COMMAND="):]))
	}
	return true
}

func cronCommand(ev *event.Event, msg string, start, end int) bool {
	open := strings.LastIndexByte(msg[:start], '(')
	if open < 0 {
		return false
	}
	setIfEmpty(&ev.User, msg[open+1:start])
	cmd := msg[end:]
	if n := len(cmd); n > 0 && cmd[n-1] == ')' {
		cmd = cmd[:n-1]
	}
	setIfEmpty(&ev.CommandLine, cmd)
	return true
}

func upToComma(ev *event.Event, msg string, _, end int) bool {
	rest := msg[end:]
	if i := strings.IndexByte(rest, ','); i >= 0 {
		rest = rest[:i]
	}
	setIfEmpty(&ev.TargetUser, rest)
	return rest != ""
}

func quoted(ev *event.Event, msg string, _, end int) bool {
	rest := msg[end:]
	i := strings.IndexByte(rest, '\'')
	if i <= 0 {
		return false
	}
	setIfEmpty(&ev.TargetUser, rest[:i])
	return true
}

func quotedToGroup(ev *event.Event, msg string, start, end int) bool {
	if !strings.Contains(msg[end:], "' to ") || !strings.Contains(msg[end:], "group '") {
		return false
	}
	return quoted(ev, msg, start, end)
}

func gpasswdAdd(ev *event.Event, msg string, start, end int) bool {
	i := strings.LastIndex(msg[:start], "user ")
	if i < 0 {
		return false
	}
	setIfEmpty(&ev.TargetUser, msg[i+len("user "):start])
	setIfEmpty(&ev.User, word(msg[end:]))
	return true
}

func restWord(ev *event.Event, msg string, _, end int) bool {
	u := word(msg[end:])
	setIfEmpty(&ev.TargetUser, u)
	return u != ""
}

// word returns s up to the first space, or all of s.
func word(s string) string {
	if i := strings.IndexByte(s, ' '); i >= 0 {
		return s[:i]
	}
	return s
}
