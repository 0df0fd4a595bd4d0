package source

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

func TestUnquote(t *testing.T) {
	for _, raw := range []string{
		`"C:\\Windows\\System32\\cmd.exe"`, `"say \"hi\"\n\tnext"`, `"caf\u00e9 \ud83d\ude00 \u20ac"`,
		`"a\/b\b\f\r"`, `"x\\"`, `"\u0041\u0042"`,
	} {
		var want string
		if err := json.Unmarshal([]byte(raw), &want); err != nil {
			t.Fatal(err)
		}
		if got := unquote(raw); got != want {
			t.Errorf("unquote(%s) = %q, want %q", raw, got, want)
		}
	}
}

// FuzzUnquote compares the decoder with encoding/json on every valid
// string literal that has an escape.
func FuzzUnquote(f *testing.F) {
	for _, s := range []string{`"a\\b"`, `"\ud83d\ude00"`, `"\ud83dx"`, `"\u00e9\n"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		// Invalid UTF-8 is kept as it is (like unescaped strings), where
		// encoding/json substitutes U+FFFD: compare valid text only.
		if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' || !validJSON(raw) || !utf8.ValidString(raw) {
			return
		}
		var want string
		if err := json.Unmarshal([]byte(raw), &want); err != nil {
			return
		}
		if got := unquote(raw); got != want {
			t.Fatalf("unquote(%q) = %q, encoding/json gives %q", raw, got, want)
		}
	})
}
