package config

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func parse(t *testing.T, scope Scope, args ...string) *Flags {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f := Bind(fs, scope)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parse %v: %v", args, err)
	}
	return f
}

func TestDefaults(t *testing.T) {
	c, err := Load(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c != Default() {
		t.Fatalf("Load with no sources = %v, want defaults %v", c, Default())
	}
	if c.Listen != "127.0.0.1:8080" || c.KeepaliveInterval != 10*time.Second || c.MaxLineBytes != 1<<20 ||
		c.MaxStreams != 64 || c.MaxEvidence != 5 || c.Token != "" {
		t.Fatalf("unexpected defaults: %v", c)
	}
}

func TestPrecedence(t *testing.T) {
	file := writeFile(t, "loupe.yaml", `
listen: 0.0.0.0:9000
max_line_bytes: 2048
max_streams: 8
keepalive_interval: 3s
log_format: json
`)
	// File only.
	c, err := Load(parse(t, Serve, "-config", file), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "0.0.0.0:9000" || c.MaxLineBytes != 2048 || c.MaxStreams != 8 ||
		c.KeepaliveInterval != 3*time.Second || c.LogFormat != "json" {
		t.Fatalf("file not applied: %v", c)
	}
	if c.MaxEvidence != 5 {
		t.Fatalf("unset key lost its default: %v", c)
	}

	// Env over file, file named by LOUPE_CONFIG.
	e := env(map[string]string{"LOUPE_CONFIG": file, "LOUPE_MAX_LINE_BYTES": "4096", "LOUPE_LISTEN": "127.0.0.1:7000"})
	c, err = Load(parse(t, Serve), e)
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxLineBytes != 4096 || c.Listen != "127.0.0.1:7000" || c.MaxStreams != 8 {
		t.Fatalf("env over file: %v", c)
	}

	// Flags over env over file.
	c, err = Load(parse(t, Serve, "-max-line-bytes", "100", "-keepalive", "50ms"), e)
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxLineBytes != 100 || c.KeepaliveInterval != 50*time.Millisecond || c.Listen != "127.0.0.1:7000" || c.MaxStreams != 8 {
		t.Fatalf("flags over env: %v", c)
	}

	// Detection and reasoning keys, in each source.
	rules := writeFile(t, "rules.yaml", "rules: /srv/sigma\nsigma_mapping: /srv/map.yml\nllm:\n  reasoning: true\n")
	c, err = Load(parse(t, Serve, "-config", rules), nil)
	if err != nil || c.Rules != "/srv/sigma" || c.SigmaMapping != "/srv/map.yml" || !c.LLMReasoning {
		t.Fatalf("rules keys from the file: %v %v", c, err)
	}
	c, err = Load(parse(t, Analyze, "-config", rules, "-rules", "/x"), env(map[string]string{"LOUPE_SIGMA_MAPPING": "/m", "LOUPE_LLM_REASONING": "false"}))
	if err != nil || c.Rules != "/x" || c.SigmaMapping != "/m" || c.LLMReasoning {
		t.Fatalf("rules keys over env and flags: %v %v", c, err)
	}

	// --config flag beats LOUPE_CONFIG.
	other := writeFile(t, "other.yaml", "max_streams: 3\n")
	c, err = Load(parse(t, Serve, "-config", other), env(map[string]string{"LOUPE_CONFIG": file}))
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxStreams != 3 || c.Listen != Default().Listen {
		t.Fatalf("--config did not replace LOUPE_CONFIG: %v", c)
	}
}

func TestTokenSources(t *testing.T) {
	secretFile := writeFile(t, "token", "s3cret-from-file\n")
	c, err := Load(nil, env(map[string]string{"LOUPE_TOKEN_FILE": secretFile}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Token != "s3cret-from-file" {
		t.Fatalf("LOUPE_TOKEN_FILE: token = %q", c.Token)
	}
	c, err = Load(nil, env(map[string]string{"LOUPE_TOKEN": "abc"}))
	if err != nil || c.Token != "abc" {
		t.Fatalf("LOUPE_TOKEN: %q, %v", c.Token, err)
	}
	cfgFile := writeFile(t, "c.yaml", "token_file: "+secretFile+"\n")
	c, err = Load(parse(t, Serve, "-config", cfgFile), nil)
	if err != nil || c.Token != "s3cret-from-file" {
		t.Fatalf("token_file key: %q, %v", c.Token, err)
	}
	// Env token beats the file's.
	c, err = Load(parse(t, Serve, "-config", cfgFile), env(map[string]string{"LOUPE_TOKEN": "env"}))
	if err != nil || c.Token != "env" {
		t.Fatalf("env over file token: %q, %v", c.Token, err)
	}

	// No flag for the token exists.
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	Bind(fs, Serve|Analyze)
	if err := fs.Parse([]string{"-token", "x"}); err == nil {
		t.Fatal("a -token flag was accepted")
	}
	if fs.Lookup("token-file") != nil || fs.Lookup("token_file") != nil {
		t.Fatal("a token file flag exists")
	}
}

func TestBadValues(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope")
	cases := []struct {
		name string
		file string // config file body, "" = none
		env  map[string]string
		args []string
		want []string // substrings of the error
	}{
		{name: "unknown key", file: "listen: x:1\nmax_lines: 3\n", want: []string{`unknown key "max_lines"`, ":2"}},
		{name: "bad int in file", file: "max_streams: many\n", want: []string{`"max_streams"`, "not an integer"}},
		{name: "nested value", file: "listen:\n  a: b\n", want: []string{`"listen"`}},
		{name: "not a mapping", file: "- a\n- b\n", want: []string{"mapping"}},
		{name: "bad yaml", file: "listen: [\n", want: []string{"c.yaml"}},
		{name: "bad env int", env: map[string]string{"LOUPE_MAX_LINE_BYTES": "1MB"}, want: []string{"LOUPE_MAX_LINE_BYTES", "not an integer"}},
		{name: "negative env", env: map[string]string{"LOUPE_MAX_STREAMS": "-1"}, want: []string{"LOUPE_MAX_STREAMS", "not positive"}},
		{name: "bad env duration", env: map[string]string{"LOUPE_KEEPALIVE_INTERVAL": "often"}, want: []string{"LOUPE_KEEPALIVE_INTERVAL"}},
		{name: "bad log level", env: map[string]string{"LOUPE_LOG_LEVEL": "loud"}, want: []string{"LOUPE_LOG_LEVEL", "loud"}},
		{name: "bad log format", env: map[string]string{"LOUPE_LOG_FORMAT": "xml"}, want: []string{"LOUPE_LOG_FORMAT", "xml"}},
		{name: "missing token file", env: map[string]string{"LOUPE_TOKEN_FILE": missing}, want: []string{"LOUPE_TOKEN_FILE"}},
		{name: "both token vars", env: map[string]string{"LOUPE_TOKEN": "a", "LOUPE_TOKEN_FILE": missing}, want: []string{"LOUPE_TOKEN", "LOUPE_TOKEN_FILE"}},
		{name: "both token keys", file: "token: a\ntoken_file: b\n", want: []string{"token_file"}},
		{name: "missing config file", env: map[string]string{"LOUPE_CONFIG": missing}, want: []string{"nope"}},
		{name: "source url not http", env: map[string]string{"LOUPE_SOURCE_URLS": "http://a:1,ftp://b"}, want: []string{"LOUPE_SOURCE_URLS", "ftp://b"}},
		{name: "source url with credentials", file: "source_urls: http://u:p@a:1\n", want: []string{"source_urls", "credentials"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if tc.file != "" {
				args = append([]string{"-config", writeFile(t, "c.yaml", tc.file)}, args...)
			}
			_, err := Load(parse(t, Serve, args...), env(tc.env))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestBadFlag(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	var out bytes.Buffer
	fs.SetOutput(&out)
	Bind(fs, Serve)
	err := fs.Parse([]string{"-max-streams", "zero"})
	if err == nil || !strings.Contains(err.Error(), "max-streams") {
		t.Fatalf("bad flag value: err = %v", err)
	}
}

func TestScope(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	Bind(fs, Analyze)
	if fs.Lookup("listen") != nil || fs.Lookup("max-streams") != nil {
		t.Error("analyze scope offers server flags")
	}
	if fs.Lookup("max-line-bytes") == nil || fs.Lookup("max-evidence") == nil || fs.Lookup("config") == nil {
		t.Error("analyze scope lacks analysis flags")
	}
}

func TestRedaction(t *testing.T) {
	c := Default()
	c.Token = "hunter2-very-secret"
	var buf bytes.Buffer
	for _, l := range []*slog.Logger{
		slog.New(slog.NewTextHandler(&buf, nil)),
		slog.New(slog.NewJSONHandler(&buf, nil)),
	} {
		l.Info("config", "config", c)
	}
	fmt.Fprintf(&buf, "%v %+v %#v %s", c, c, c, c)
	out := buf.String()
	if strings.Contains(out, "hunter2") {
		t.Fatalf("token leaked: %s", out)
	}
	if !strings.Contains(out, "[redacted]") || !strings.Contains(out, "127.0.0.1:8080") {
		t.Fatalf("config not rendered: %s", out)
	}
	c.Token = ""
	buf.Reset()
	slog.New(slog.NewTextHandler(&buf, nil)).Info("config", "config", c)
	if strings.Contains(buf.String(), "[redacted]") {
		t.Fatalf("empty token shown as redacted: %s", buf.String())
	}
}

func TestLogger(t *testing.T) {
	c := Default()
	c.LogFormat = "json"
	c.LogLevel = "warn"
	var buf bytes.Buffer
	l := c.Logger(&buf)
	l.Info("hidden")
	l.Warn("shown")
	out := buf.String()
	if strings.Contains(out, "hidden") || !strings.Contains(out, `"msg":"shown"`) {
		t.Fatalf("logger output %q", out)
	}
}

// FuzzLoadFile feeds arbitrary YAML to the config file parser: it must
// return a config or an error, never panic, and never keep a bad value.
func FuzzLoadFile(f *testing.F) {
	f.Add([]byte("listen: 1.2.3.4:5\nmax_streams: 2\n"))
	f.Add([]byte("keepalive_interval: 1s\nlog_level: debug\n"))
	f.Add([]byte("max_line_bytes: -3\n"))
	f.Add([]byte("- x\n"))
	f.Add([]byte("{a: [1, 2]}"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, body []byte) {
		if bytes.Contains(body, []byte("token_file")) {
			return // would read arbitrary paths
		}
		p := filepath.Join(dir, "c.yaml")
		if err := os.WriteFile(p, body, 0o600); err != nil {
			t.Fatal(err)
		}
		c := Default()
		if err := c.loadFile(p); err != nil {
			return
		}
		if c.MaxLineBytes <= 0 || c.MaxStreams <= 0 || c.KeepaliveInterval <= 0 || c.Listen == "" {
			t.Fatalf("accepted invalid config %v from %q", c, body)
		}
	})
}
