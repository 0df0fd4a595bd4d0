package obfuscate

import (
	"math"
	"strings"
)

// Byte classes, looked up in one table so the scanners' inner loops are
// a load and a test.
const (
	cDigit uint16 = 1 << iota
	cAlpha
	cHex
	cSpace
	cWord   // continues a name: alnum, '_', '-'
	cKey    // key in key=value: alnum, '_', '.', '-'
	cName   // user name: alnum, '.', '_', '-', '$'
	cLabel  // host name or dotted word: alnum, '-', '.', '_'
	cB64URL // alnum, '_', '-'
	cAlnumUnder
	cAlnumDash
	cUpperDigit
	cToken // bearer token: alnum and ._~+/=-
	cIPv6  // hex, ':', '.'
	cMail  // mail local part or domain: alnum and ._%+-
)

var class [256]uint16

func init() {
	for c := 0; c < 256; c++ {
		b := byte(c)
		var k uint16
		digit := '0' <= b && b <= '9'
		upper := 'A' <= b && b <= 'Z'
		alpha := upper || ('a' <= b && b <= 'z')
		alnum := digit || alpha
		if digit {
			k |= cDigit
		}
		if alpha {
			k |= cAlpha
		}
		if digit || ('a' <= b|0x20 && b|0x20 <= 'f') {
			k |= cHex | cIPv6
		}
		if b == ':' || b == '.' {
			k |= cIPv6
		}
		if b == ' ' || b == '\t' || b == '\n' || b == '\r' || b == '\v' || b == '\f' {
			k |= cSpace
		}
		set := func(bit uint16, extra string) {
			if alnum || strings.IndexByte(extra, b) >= 0 {
				k |= bit
			}
		}
		set(cWord, "_-")
		set(cKey, "_.-")
		set(cName, "._-$")
		set(cLabel, "-._")
		set(cB64URL, "_-")
		set(cAlnumUnder, "_")
		set(cAlnumDash, "-")
		set(cToken, "._~+/=-")
		set(cMail, "._%+-")
		if upper || digit {
			k |= cUpperDigit
		}
		class[c] = k
	}
}

func is(c byte, k uint16) bool { return class[c]&k != 0 }

func isDigit(c byte) bool    { return class[c]&cDigit != 0 }
func isAlpha(c byte) bool    { return class[c]&cAlpha != 0 }
func isAlnum(c byte) bool    { return class[c]&(cDigit|cAlpha) != 0 }
func isHex(c byte) bool      { return class[c]&cHex != 0 }
func isUpper(c byte) bool    { return 'A' <= c && c <= 'Z' }
func isLower(c byte) bool    { return 'a' <= c && c <= 'z' }
func isSpace(c byte) bool    { return class[c]&cSpace != 0 }
func isWordByte(c byte) bool { return class[c]&cWord != 0 }
func isKeyByte(c byte) bool  { return class[c]&cKey != 0 }
func isNameByte(c byte) bool { return class[c]&cName != 0 }

// run returns the end of the run of bytes of class k starting at i.
func run(s string, i int, k uint16) int {
	for i < len(s) && class[s[i]]&k != 0 {
		i++
	}
	return i
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return s != ""
}

// isContainerID reports 12 or 64 lower-case hex digits.
func isContainerID(s string) bool {
	if len(s) != 12 && len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isDigit(c) && !('a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// keyClass says what the value of a key holds.
type keyClass uint8

const (
	keyNone        keyClass = iota
	keySecret               // always a secret
	keyMaybeSecret          // a secret when it looks random (…key=)
	keyAuth                 // Authorization header: scheme, then credential
	keyUser
	keyHost
	keyContainer // container id, or a container name (host) when not hex
)

var exactKeys = map[string]keyClass{
	// secrets
	"pwd": keySecret, "pass": keySecret, "pw": keySecret, "token": keySecret,
	"apikey": keySecret, "privatekey": keySecret, "credential": keySecret,
	"credentials": keySecret, "cookie": keySecret, "setcookie": keySecret,
	"authorization": keyAuth, "proxyauthorization": keyAuth,
	// users
	"user": keyUser, "usr": keyUser, "accountname": keyUser, "samaccountname": keyUser,
	"logname": keyUser, "ruser": keyUser, "suser": keyUser, "duser": keyUser,
	"acct": keyUser, "userloginname": keyUser, "logonaccount": keyUser,
	"uid": keyUser, "auid": keyUser, "euid": keyUser, "suid": keyUser, "fsuid": keyUser,
	"ouid": keyUser, "owner": keyUser, "upn": keyUser, "userprincipalname": keyUser,
	// hosts
	"host": keyHost, "hostname": keyHost, "computer": keyHost, "computername": keyHost,
	"workstation": keyHost, "workstationname": keyHost, "containername": keyHost,
	"k8spodname": keyHost, "k8spod": keyHost, "podname": keyHost, "rhost": keyHost,
	"shost": keyHost, "dhost": keyHost, "srchost": keyHost, "dsthost": keyHost,
	"fqdn": keyHost, "servername": keyHost, "machinename": keyHost, "nodename": keyHost,
	"k8snodename": keyHost, "dnsquestionname": keyHost, "sni": keyHost,
	// containers
	"containerid": keyContainer, "dockerid": keyContainer, "container": keyContainer,
}

// normKey lower-cases k and drops '.', '_' and '-' into buf, so that
// "user.name", "user_name", "UserName" and "--user-name" read alike.
func normKey(buf []byte, k string) []byte {
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c == '.' || c == '_' || c == '-':
		case 'A' <= c && c <= 'Z':
			buf = append(buf, c+'a'-'A')
		default:
			buf = append(buf, c)
		}
	}
	return buf
}

// classifyKey says what a key's value holds.
func classifyKey(k string) keyClass {
	if len(k) == 0 || len(k) > 64 {
		return keyNone
	}
	if !isAlpha(k[len(k)-1]) {
		return keyNone // every known key ends in a letter
	}
	var arr [64]byte
	n := normKey(arr[:0], k)
	if c, ok := exactKeys[string(n)]; ok {
		return c
	}
	return classifyNorm(string(n))
}

func classifyNorm(n string) keyClass {
	switch {
	case strings.Contains(n, "password"), strings.Contains(n, "passwd"),
		strings.Contains(n, "passphrase"), strings.Contains(n, "secret"):
		return keySecret
	case strings.HasSuffix(n, "token"), strings.HasSuffix(n, "apikey"):
		return keySecret
	case strings.HasSuffix(n, "username"):
		return keyUser
	case strings.HasSuffix(n, "hostname"):
		return keyHost
	case strings.Contains(n, "key"):
		return keyMaybeSecret
	}
	return keyNone
}

// classifyPath reads a dotted key path such as "output_fields.container.id"
// by its longest known suffix of whole segments.
func classifyPath(k string) keyClass {
	for {
		if c := classifyKey(k); c != keyNone {
			return c
		}
		dot := strings.IndexByte(k, '.')
		if dot < 0 {
			return keyNone
		}
		k = k[dot+1:]
	}
}

// classifyPair reads a two-word key such as "Account Name".
func classifyPair(first, second string) keyClass {
	if len(first)+len(second) > 64 {
		return keyNone
	}
	var arr [64]byte
	n := normKey(normKey(arr[:0], first), second)
	if c, ok := exactKeys[string(n)]; ok {
		return c
	}
	return classifyNorm(string(n))
}

// secretWord reports a word after which a random-looking value is a secret.
func secretWord(w string) bool {
	if len(w) > 64 {
		return false
	}
	var arr [64]byte
	n := string(normKey(arr[:0], w))
	return strings.Contains(n, "key") || strings.Contains(n, "secret") ||
		strings.Contains(n, "token") || strings.Contains(n, "password") || strings.Contains(n, "passwd")
}

// highEntropy reports a value that looks like a generated key: at least 16
// bytes of token characters, two character classes, and >= 3 bits/byte.
func highEntropy(v string) bool {
	if len(v) < 16 || len(v) > 1024 {
		return false
	}
	var counts [128]uint16
	var upper, lower, digit bool
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case isUpper(c):
			upper = true
		case isLower(c):
			lower = true
		case isDigit(c):
			digit = true
		case strings.IndexByte("+/=_-.~", c) >= 0:
		default:
			return false
		}
		counts[c]++
	}
	classes := 0
	for _, b := range [...]bool{upper, lower, digit} {
		if b {
			classes++
		}
	}
	if classes < 2 {
		return false
	}
	h := 0.0
	for _, c := range counts {
		if c > 0 {
			p := float64(c) / float64(len(v))
			h -= p * math.Log2(p)
		}
	}
	return h >= 3.0
}

// setOf builds a lookup set from a space-separated list.
func setOf(list string) map[string]bool {
	m := make(map[string]bool)
	for _, w := range strings.Fields(list) {
		m[w] = true
	}
	return m
}

// nobody are user values that name no person.
var nobody = setOf("- -- ? <na> n/a na null nil none (none) unknown system anonymous " +
	"local service network service anonymous logon")

// noHost are host values that name no machine.
var noHost = setOf("- -- ? <na> n/a na null nil none (none) unknown localhost host")

// notUserWords follow "user" in prose without being a name.
var notUserWords = setOf("a an the is was has had have not no in on at to of as by for from " +
	"with and or if that this which who when account accounts name names id ids logged login " +
	"logon session sessions already does did do unknown invalid agent data must cannot can " +
	"should will would may group groups list mode access info password authentication " +
	"authenticated authorization request requested successfully failed root-only")

// notHomeDirs are directories under /home or C:\Users that are not people.
var notHomeDirs = setOf("public default all default.migrated shared . .. * lost+found")

// tlds are top-level domains that make a dotted name a host. Some TLDs are
// also common file extensions; those are in ambiguousTLDs and count only
// with three or more labels.
var tlds = setOf(`com net org edu gov mil int arpa io co me us uk de fr ru cn jp nl eu ca au br
es se no fi dk ch at be cz kr tw hk sg za nz ie il ua tr ir kp vn th my pk gr pt ro hu sk bg
hr si lt lv ee by kz ar mx cl pe ve su tk ga cf gq pw ws tv fm to ly gg je im li lu mt cy info biz
xyz top online site club shop store tech cloud app dev page win vip live link icu buzz today
space website email network systems services solutions digital world news blog pro onion local
localdomain lan internal intranet corp home private test example invalid localhost svc cluster`)

var ambiguousTLDs = setOf(`sh py pl md rs so ps in cc ai zip mov is it pm cat am ac mk ml tf la
ph ms sc do id`)

// javaRoots start reverse-domain package names, which are not hosts.
var javaRoots = setOf("com org net io java javax android androidx kotlin sun jdk")
