// Package config loads loupe's settings. Sources, lowest precedence first:
// built-in defaults, a YAML file (--config FILE or LOUPE_CONFIG), LOUPE_*
// environment variables, then command-line flags. The API token is a secret:
// it is read only from the environment (LOUPE_TOKEN or LOUPE_TOKEN_FILE) or
// the config file (token, token_file), never from a flag, and it is redacted
// whenever a Config is logged or printed.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config holds every setting of the server and the analyzer.
type Config struct {
	Listen            string        // address the server binds
	Token             string        // optional API bearer token (secret)
	KeepaliveInterval time.Duration // blank line after this much silence on a stream
	MaxLineBytes      int           // longest accepted input line
	MaxStreams        int           // concurrent /analyze_logs streams
	MaxEvidence       int           // events linked to one conclusion
	MaxGroups         int           // repeated-conclusion groups held by the reasoner
	MaxTracked        int           // correlation keys held by the detector
	LogLevel          string        // debug, info, warn, error
	LogFormat         string        // json or text
}

// Default returns the built-in settings.
func Default() Config {
	return Config{
		Listen:            "127.0.0.1:8080",
		KeepaliveInterval: 10 * time.Second,
		MaxLineBytes:      1 << 20,
		MaxStreams:        64,
		MaxEvidence:       5,
		MaxGroups:         10000,
		MaxTracked:        100000,
		LogLevel:          "info",
		LogFormat:         "text",
	}
}

// Scope selects which settings a command offers as flags.
type Scope uint8

const (
	// Serve offers every non-secret setting.
	Serve Scope = 1 << iota
	// Analyze offers only the settings that shape an analysis run.
	Analyze
)

// setting describes one key and how it is spelled in each source.
type setting struct {
	key    string // YAML key
	flag   string // "" = no flag (secrets)
	scope  Scope
	usage  string
	secret bool
	set    func(c *Config, v string) error
	def    func(c Config) string
}

var settings = []setting{
	{key: "listen", flag: "listen", scope: Serve, usage: "`address` to listen on (host:port)",
		set: func(c *Config, v string) error {
			if strings.TrimSpace(v) == "" {
				return errors.New("empty address")
			}
			c.Listen = v
			return nil
		},
		def: func(c Config) string { return c.Listen }},
	{key: "token", scope: Serve, secret: true,
		set: func(c *Config, v string) error { c.Token = v; return nil }},
	{key: "token_file", scope: Serve, secret: true,
		set: func(c *Config, v string) error {
			t, err := readSecretFile(v)
			if err != nil {
				return err
			}
			c.Token = t
			return nil
		}},
	{key: "keepalive_interval", flag: "keepalive", scope: Serve, usage: "write a blank line on a stream quiet for this `duration`",
		set: func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil {
				return err
			}
			if d <= 0 {
				return fmt.Errorf("%v is not positive", d)
			}
			c.KeepaliveInterval = d
			return nil
		},
		def: func(c Config) string { return c.KeepaliveInterval.String() }},
	intSetting("max_line_bytes", "max-line-bytes", Serve|Analyze, "longest accepted input line in `bytes`",
		func(c *Config) *int { return &c.MaxLineBytes }),
	intSetting("max_streams", "max-streams", Serve, "`n` concurrent /analyze_logs streams at most",
		func(c *Config) *int { return &c.MaxStreams }),
	intSetting("max_evidence", "max-evidence", Serve|Analyze, "`n` events linked to one conclusion at most",
		func(c *Config) *int { return &c.MaxEvidence }),
	intSetting("max_groups", "max-groups", Serve|Analyze, "`n` repeated-conclusion groups held per run at most",
		func(c *Config) *int { return &c.MaxGroups }),
	intSetting("max_tracked", "max-tracked", Serve|Analyze, "`n` correlation keys held per run at most",
		func(c *Config) *int { return &c.MaxTracked }),
	{key: "log_level", flag: "log-level", scope: Serve | Analyze, usage: "log `level`: debug, info, warn or error",
		set: func(c *Config, v string) error {
			var l slog.Level
			if err := l.UnmarshalText([]byte(v)); err != nil {
				return fmt.Errorf("%q is not debug, info, warn or error", v)
			}
			c.LogLevel = strings.ToLower(v)
			return nil
		},
		def: func(c Config) string { return c.LogLevel }},
	{key: "log_format", flag: "log-format", scope: Serve | Analyze, usage: "log `format`: json or text",
		set: func(c *Config, v string) error {
			switch v = strings.ToLower(v); v {
			case "json", "text":
				c.LogFormat = v
				return nil
			}
			return fmt.Errorf("%q is not json or text", v)
		},
		def: func(c Config) string { return c.LogFormat }},
}

func intSetting(key, flagName string, scope Scope, usage string, field func(*Config) *int) setting {
	return setting{key: key, flag: flagName, scope: scope, usage: usage,
		set: func(c *Config, v string) error {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				return fmt.Errorf("%q is not an integer", v)
			}
			if n <= 0 {
				return fmt.Errorf("%d is not positive", n)
			}
			*field(c) = n
			return nil
		},
		def: func(c Config) string { return strconv.Itoa(*field(&c)) }}
}

// envName is the environment variable of a key: LOUPE_MAX_LINE_BYTES.
func envName(key string) string { return "LOUPE_" + strings.ToUpper(key) }

func readSecretFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return s, nil
}

// Flags holds the values of the flags bound onto a FlagSet, as given, until
// Load applies them over the other sources.
type Flags struct {
	fs     *flag.FlagSet
	config string
	values map[string]string // key → raw flag value
}

// Bind registers the flags of scope on fs (plus --config) and returns the
// holder to pass to Load after fs.Parse.
func Bind(fs *flag.FlagSet, scope Scope) *Flags {
	f := &Flags{fs: fs, values: map[string]string{}}
	fs.StringVar(&f.config, "config", "", "YAML config file (default $LOUPE_CONFIG)")
	def := Default()
	for _, s := range settings {
		if s.flag == "" || s.scope&scope == 0 {
			continue
		}
		key := s.key
		usage := s.usage
		if s.def != nil {
			usage += " (default " + s.def(def) + ")"
		}
		fs.Func(s.flag, usage, func(v string) error {
			var probe Config
			if err := s.set(&probe, v); err != nil {
				return err
			}
			f.values[key] = v
			return nil
		})
	}
	return f
}

// Load builds the Config from defaults, the YAML file, the environment (read
// through getenv, usually os.LookupEnv) and the flags f (nil for none).
// Errors name the file key, variable or flag at fault.
func Load(f *Flags, getenv func(string) (string, bool)) (Config, error) {
	if getenv == nil {
		getenv = func(string) (string, bool) { return "", false }
	}
	c := Default()
	path := ""
	if v, ok := getenv("LOUPE_CONFIG"); ok && v != "" {
		path = v
	}
	if f != nil && f.config != "" {
		path = f.config
	}
	if path != "" {
		if err := c.loadFile(path); err != nil {
			return Config{}, err
		}
	}
	_, hasToken := getenv("LOUPE_TOKEN")
	_, hasTokenFile := getenv("LOUPE_TOKEN_FILE")
	if hasToken && hasTokenFile {
		return Config{}, errors.New("config: set only one of LOUPE_TOKEN and LOUPE_TOKEN_FILE")
	}
	for _, s := range settings {
		name := envName(s.key)
		v, ok := getenv(name)
		if !ok {
			continue
		}
		if err := s.set(&c, v); err != nil {
			return Config{}, fmt.Errorf("config: environment %s: %w", name, err)
		}
	}
	if f != nil {
		for _, s := range settings {
			v, ok := f.values[s.key]
			if !ok {
				continue
			}
			if err := s.set(&c, v); err != nil {
				return Config{}, fmt.Errorf("config: flag -%s: %w", s.flag, err)
			}
		}
	}
	return c, nil
}

// loadFile applies a YAML mapping of keys to scalar values.
func (c *Config) loadFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("config: %s: %w", path, err)
	}
	if len(doc.Content) == 0 {
		return nil // empty file
	}
	m := doc.Content[0]
	if m.Kind != yaml.MappingNode {
		return fmt.Errorf("config: %s: want a mapping of settings at line %d", path, m.Line)
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		s, ok := lookup(k.Value)
		if !ok {
			return fmt.Errorf("config: %s:%d: unknown key %q", path, k.Line, k.Value)
		}
		if v.Kind != yaml.ScalarNode {
			return fmt.Errorf("config: %s:%d: key %q wants a single value", path, v.Line, k.Value)
		}
		if s.secret {
			if seen["token"] || seen["token_file"] {
				return fmt.Errorf("config: %s:%d: set only one of token and token_file", path, k.Line)
			}
		}
		seen[s.key] = true
		if err := s.set(c, v.Value); err != nil {
			return fmt.Errorf("config: %s:%d: key %q: %w", path, v.Line, k.Value, err)
		}
	}
	return nil
}

func lookup(key string) (setting, bool) {
	for _, s := range settings {
		if s.key == key {
			return s, true
		}
	}
	return setting{}, false
}

// LogValue renders the config for log/slog with the token redacted.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("listen", c.Listen),
		slog.String("token", redact(c.Token)),
		slog.Duration("keepalive_interval", c.KeepaliveInterval),
		slog.Int("max_line_bytes", c.MaxLineBytes),
		slog.Int("max_streams", c.MaxStreams),
		slog.Int("max_evidence", c.MaxEvidence),
		slog.Int("max_groups", c.MaxGroups),
		slog.Int("max_tracked", c.MaxTracked),
		slog.String("log_level", c.LogLevel),
		slog.String("log_format", c.LogFormat),
	)
}

// String renders the config for fmt with the token redacted.
func (c Config) String() string {
	return fmt.Sprintf("listen=%s token=%s keepalive_interval=%s max_line_bytes=%d max_streams=%d max_evidence=%d max_groups=%d max_tracked=%d log_level=%s log_format=%s",
		c.Listen, redact(c.Token), c.KeepaliveInterval, c.MaxLineBytes, c.MaxStreams,
		c.MaxEvidence, c.MaxGroups, c.MaxTracked, c.LogLevel, c.LogFormat)
}

// GoString keeps %#v from printing the token.
func (c Config) GoString() string { return "config.Config{" + c.String() + "}" }

func redact(secret string) string {
	if secret == "" {
		return ""
	}
	return "[redacted]"
}

// Logger returns a slog.Logger writing to w in the configured format and level.
func (c Config) Logger(w io.Writer) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
