// Package config loads loupe's settings. Sources, lowest precedence first:
// built-in defaults, a YAML file (--config FILE or LOUPE_CONFIG), environment
// variables, then command-line flags. Every key has a LOUPE_* variable (key
// "llm.base_url" is LOUPE_LLM_BASE_URL); the SIB analysis service's own
// variables are accepted too, below their LOUPE_* equivalents: STACK,
// ANALYSIS_CACHE_TTL, and OPENAI_API_KEY or ANTHROPIC_API_KEY (or their
// *_FILE forms) for the key of the configured LLM provider.
//
// The YAML file may nest keys the way SIB's config.yaml does (llm: {provider:
// ollama}) or spell them dotted (llm.provider: ollama).
//
// The API token and the LLM API key are secrets: they are read only from the
// environment or the config file, never from a flag, and they are redacted
// whenever a Config is logged or printed.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
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

	// SIB-compatible alert analysis.
	LLMProvider       string        // ollama, openai, anthropic or none (offline analysis)
	LLMModel          string        // model name for the provider
	LLMBaseURL        string        // provider endpoint, e.g. http://localhost:11434
	LLMAPIKey         string        // provider API key (secret)
	Obfuscation       bool          // obfuscate alerts before they reach a model
	PreserveStructure bool          // keep the text around tokens exactly as it was
	CacheEnabled      bool          // cache analyses
	CacheTTL          time.Duration // how long a cached analysis is served
	Stack             string        // log store of the SIB stack: loki or vm (VictoriaLogs)
	LokiURL           string
	VictoriaLogsURL   string
	GrafanaURL        string
	FalcoURL          string // Falco's embedded web server (health endpoint)
	FalcosidekickURL  string

	// Investigations (background jobs and their store).
	StoreDSN       string // findings store: "" = SQLite loupe.db in DataDir; sqlite:PATH; postgres://…
	DataDir        string // uploads and the default SQLite store; "" = $XDG_DATA_HOME/loupe or ~/.local/share/loupe
	MaxUploadBytes int    // largest investigation upload accepted over HTTP
	MaxJobs        int    // investigation jobs running at once
	FileRoots      string // comma-separated directories whose files API "file" sources may name (uploads are always allowed)
	SourceURLs     string // comma-separated base URLs of log stores API sources may read (besides loki.url and victorialogs.url)

	// Detection and reasoning.
	Rules        string // directory of Sigma rules run beside the built-in detections; "" = none
	SigmaMapping string // YAML file overriding the Sigma field mapping and expand placeholders
	LLMReasoning bool   // serve: reason over clusters of each stream's events with llm.provider
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
		LLMProvider:       "none",
		Obfuscation:       true,
		PreserveStructure: true,
		CacheEnabled:      true,
		CacheTTL:          24 * time.Hour,
		Stack:             "loki",
		MaxUploadBytes:    1 << 30,
		MaxJobs:           2,
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
	key     string // YAML key, dotted when nested
	flag    string // "" = no flag (secrets)
	scope   Scope
	usage   string
	secret  string // for secrets: the secret's name; a value and a _file form share it
	boolean bool   // the flag may be given without a value
	set     func(c *Config, v string) error
	def     func(c Config) string
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
	{key: "token", scope: Serve, secret: "token",
		set: func(c *Config, v string) error { c.Token = v; return nil }},
	{key: "token_file", scope: Serve, secret: "token",
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
	{key: "llm.provider", flag: "llm-provider", scope: Serve, usage: "LLM `provider` for alert analysis: ollama, openai, anthropic or none (offline)",
		set: func(c *Config, v string) error {
			switch v = strings.ToLower(strings.TrimSpace(v)); v {
			case "ollama", "openai", "anthropic", "none":
				c.LLMProvider = v
				return nil
			case "":
				c.LLMProvider = "none"
				return nil
			}
			return fmt.Errorf("%q is not ollama, openai, anthropic or none", v)
		},
		def: func(c Config) string { return c.LLMProvider }},
	stringSetting("llm.model", "llm-model", "LLM `model` name", func(c *Config) *string { return &c.LLMModel }),
	urlSetting("llm.base_url", "llm-base-url", "LLM provider base `url`", func(c *Config) *string { return &c.LLMBaseURL }),
	{key: "llm.api_key", scope: Serve, secret: "llm.api_key",
		set: func(c *Config, v string) error { c.LLMAPIKey = strings.TrimSpace(v); return nil }},
	{key: "llm.api_key_file", scope: Serve, secret: "llm.api_key",
		set: func(c *Config, v string) error {
			k, err := readSecretFile(v)
			if err != nil {
				return err
			}
			c.LLMAPIKey = k
			return nil
		}},
	boolSetting("obfuscation.enabled", "obfuscation", "obfuscate alerts before they reach an LLM", func(c *Config) *bool { return &c.Obfuscation }),
	boolSetting("obfuscation.preserve_structure", "obfuscation-preserve-structure", "keep the text around obfuscation tokens unchanged", func(c *Config) *bool { return &c.PreserveStructure }),
	boolSetting("cache.enabled", "cache", "cache alert analyses", func(c *Config) *bool { return &c.CacheEnabled }),
	{key: "cache.ttl", flag: "cache-ttl", scope: Serve, usage: "serve a cached analysis for this `ttl` (seconds or a duration)",
		set: func(c *Config, v string) error {
			d, err := parseTTL(v)
			if err != nil {
				return err
			}
			c.CacheTTL = d
			return nil
		},
		def: func(c Config) string { return c.CacheTTL.String() }},
	{key: "server.host", scope: Serve,
		set: func(c *Config, v string) error {
			v = strings.TrimSpace(v)
			if v == "" {
				return errors.New("empty host")
			}
			_, port := splitListen(c.Listen)
			c.Listen = net.JoinHostPort(v, port)
			return nil
		}},
	{key: "server.port", scope: Serve,
		set: func(c *Config, v string) error {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || n <= 0 || n > 65535 {
				return fmt.Errorf("%q is not a port number", v)
			}
			host, _ := splitListen(c.Listen)
			c.Listen = net.JoinHostPort(host, strconv.Itoa(n))
			return nil
		}},
	{key: "stack", flag: "stack", scope: Serve, usage: "log store of the SIB `stack`: loki, or vm for VictoriaLogs",
		set: func(c *Config, v string) error {
			switch strings.ToLower(strings.TrimSpace(v)) {
			case "vm", "victorialogs":
				c.Stack = "vm"
			default:
				c.Stack = "loki"
			}
			return nil
		},
		def: func(c Config) string { return c.Stack }},
	urlSetting("loki.url", "loki-url", "Loki base `url`", func(c *Config) *string { return &c.LokiURL }),
	urlSetting("victorialogs.url", "victorialogs-url", "VictoriaLogs base `url`", func(c *Config) *string { return &c.VictoriaLogsURL }),
	urlSetting("grafana.url", "grafana-url", "Grafana base `url`", func(c *Config) *string { return &c.GrafanaURL }),
	urlSetting("falco.url", "falco-url", "Falco web server base `url`", func(c *Config) *string { return &c.FalcoURL }),
	urlSetting("falcosidekick.url", "falcosidekick-url", "falcosidekick base `url`", func(c *Config) *string { return &c.FalcosidekickURL }),
	{key: "store_dsn", scope: Serve, // may hold a password: no flag (loupe analyze --store takes one explicitly)
		set: func(c *Config, v string) error { c.StoreDSN = strings.TrimSpace(v); return nil }},
	{key: "data_dir", flag: "data-dir", scope: Serve | Analyze, usage: "`directory` for uploads and the default SQLite store",
		set: func(c *Config, v string) error { c.DataDir = strings.TrimSpace(v); return nil },
		def: func(c Config) string { return c.DataDir }},
	intSetting("max_upload_bytes", "max-upload-bytes", Serve, "largest investigation upload in `bytes`",
		func(c *Config) *int { return &c.MaxUploadBytes }),
	intSetting("max_jobs", "max-jobs", Serve, "`n` investigation jobs running at once",
		func(c *Config) *int { return &c.MaxJobs }),
	{key: "file_roots", flag: "file-roots", scope: Serve, usage: "comma-separated `directories` whose files POST /api/investigations may read",
		set: func(c *Config, v string) error { c.FileRoots = strings.TrimSpace(v); return nil },
		def: func(c Config) string { return c.FileRoots }},
	{key: "source_urls", flag: "source-urls", scope: Serve, usage: "comma-separated base `URLs` of the log stores (Loki, VictoriaLogs, OpenSearch) POST /api/investigations may read, besides loki.url and victorialogs.url",
		set: func(c *Config, v string) error {
			for _, u := range splitList(v) {
				if err := checkBaseURL(u); err != nil {
					return err
				}
			}
			c.SourceURLs = strings.TrimSpace(v)
			return nil
		},
		def: func(c Config) string { return c.SourceURLs }},
	{key: "rules", flag: "rules", scope: Serve | Analyze, usage: "also run the Sigma rules under `DIR`; serve reloads them on SIGHUP",
		set: func(c *Config, v string) error { c.Rules = strings.TrimSpace(v); return nil }},
	{key: "sigma_mapping", flag: "sigma-mapping", scope: Serve | Analyze, usage: "Sigma field mapping and expand placeholders `FILE`",
		set: func(c *Config, v string) error { c.SigmaMapping = strings.TrimSpace(v); return nil }},
	boolSetting("llm.reasoning", "llm-reasoning", "after the offline findings of each /analyze_logs stream, reason over clusters of its events with llm.provider",
		func(c *Config) *bool { return &c.LLMReasoning }),
}

// sibEnv are the SIB analysis service's variables, applied below LOUPE_*.
var sibEnv = []struct{ name, key string }{
	{"STACK", "stack"},
	{"ANALYSIS_CACHE_TTL", "cache.ttl"},
}

// providerKeyEnv names the API key variables of each provider.
var providerKeyEnv = map[string]string{"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}

func stringSetting(key, flagName, usage string, field func(*Config) *string) setting {
	return setting{key: key, flag: flagName, scope: Serve, usage: usage,
		set: func(c *Config, v string) error { *field(c) = strings.TrimSpace(v); return nil },
		def: func(c Config) string { return *field(&c) }}
}

func urlSetting(key, flagName, usage string, field func(*Config) *string) setting {
	return setting{key: key, flag: flagName, scope: Serve, usage: usage,
		set: func(c *Config, v string) error {
			v = strings.TrimRight(strings.TrimSpace(v), "/")
			if v != "" {
				if err := checkBaseURL(v); err != nil {
					return err
				}
			}
			*field(c) = v
			return nil
		},
		def: func(c Config) string { return *field(&c) }}
}

func boolSetting(key, flagName, usage string, field func(*Config) *bool) setting {
	return setting{key: key, flag: flagName, scope: Serve, usage: usage, boolean: true,
		set: func(c *Config, v string) error {
			b, err := strconv.ParseBool(strings.TrimSpace(v))
			if err != nil {
				return fmt.Errorf("%q is not true or false", v)
			}
			*field(c) = b
			return nil
		},
		def: func(c Config) string { return strconv.FormatBool(*field(&c)) }}
}

// parseTTL reads whole seconds (SIB's form, "3600") or a Go duration ("24h").
func parseTTL(v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	var d time.Duration
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n > int64(1<<62/time.Second) {
			return 0, fmt.Errorf("%q is too long", v)
		}
		d = time.Duration(n) * time.Second
	} else if d, err = time.ParseDuration(v); err != nil {
		return 0, fmt.Errorf("%q is not seconds or a duration", v)
	}
	if d <= 0 {
		return 0, fmt.Errorf("%v is not positive", d)
	}
	return d, nil
}

// splitListen splits host:port, tolerating a missing port.
func splitListen(listen string) (host, port string) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen, "8080"
	}
	return host, port
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
func envName(key string) string {
	return "LOUPE_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

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
			if d := s.def(def); d != "" {
				usage += " (default " + d + ")"
			}
		}
		fn := func(v string) error {
			probe := Default()
			if err := s.set(&probe, v); err != nil {
				return err
			}
			f.values[key] = v
			return nil
		}
		if s.boolean {
			fs.BoolFunc(s.flag, usage, fn)
		} else {
			fs.Func(s.flag, usage, fn)
		}
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
	_, hasKey := getenv("LOUPE_LLM_API_KEY")
	_, hasKeyFile := getenv("LOUPE_LLM_API_KEY_FILE")
	if hasKey && hasKeyFile {
		return Config{}, errors.New("config: set only one of LOUPE_LLM_API_KEY and LOUPE_LLM_API_KEY_FILE")
	}
	for _, e := range sibEnv {
		v, ok := getenv(e.name)
		if !ok {
			continue
		}
		s, _ := lookup(e.key)
		if err := s.set(&c, v); err != nil {
			return Config{}, fmt.Errorf("config: environment %s: %w", e.name, err)
		}
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
	// The provider's own key variable, unless LOUPE_LLM_API_KEY(_FILE) gave one.
	if name, ok := providerKeyEnv[c.LLMProvider]; ok && !hasKey && !hasKeyFile {
		v, hasV := getenv(name)
		file, hasFile := getenv(name + "_FILE")
		switch {
		case hasV && hasFile:
			return Config{}, fmt.Errorf("config: set only one of %s and %s_FILE", name, name)
		case hasV:
			c.LLMAPIKey = strings.TrimSpace(v)
		case hasFile:
			k, err := readSecretFile(file)
			if err != nil {
				return Config{}, fmt.Errorf("config: environment %s_FILE: %w", name, err)
			}
			c.LLMAPIKey = k
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
	return c.loadMapping(path, "", m, seen)
}

// loadMapping applies one YAML mapping whose keys are prefixed by prefix.
func (c *Config) loadMapping(path, prefix string, m *yaml.Node, seen map[string]bool) error {
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		key := prefix + k.Value
		if v.Kind == yaml.MappingNode && hasPrefix(key+".") {
			if err := c.loadMapping(path, key+".", v, seen); err != nil {
				return err
			}
			continue
		}
		s, ok := lookup(key)
		if !ok {
			return fmt.Errorf("config: %s:%d: unknown key %q", path, k.Line, key)
		}
		if v.Kind != yaml.ScalarNode {
			return fmt.Errorf("config: %s:%d: key %q wants a single value", path, v.Line, key)
		}
		if s.secret != "" {
			if seen["secret:"+s.secret] {
				return fmt.Errorf("config: %s:%d: set only one of %s and %s_file", path, k.Line, s.secret, s.secret)
			}
			seen["secret:"+s.secret] = true
		}
		seen[s.key] = true
		if err := s.set(c, v.Value); err != nil {
			return fmt.Errorf("config: %s:%d: key %q: %w", path, v.Line, key, err)
		}
	}
	return nil
}

// hasPrefix reports whether some key starts with prefix.
func hasPrefix(prefix string) bool {
	for _, s := range settings {
		if strings.HasPrefix(s.key, prefix) {
			return true
		}
	}
	return false
}

func lookup(key string) (setting, bool) {
	for _, s := range settings {
		if s.key == key {
			return s, true
		}
	}
	return setting{}, false
}

// LogValue renders the config for log/slog with the secrets redacted.
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
		slog.String("llm_provider", c.LLMProvider),
		slog.String("llm_model", c.LLMModel),
		slog.String("llm_base_url", c.LLMBaseURL),
		slog.String("llm_api_key", redact(c.LLMAPIKey)),
		slog.Bool("obfuscation", c.Obfuscation),
		slog.Bool("preserve_structure", c.PreserveStructure),
		slog.Bool("cache", c.CacheEnabled),
		slog.Duration("cache_ttl", c.CacheTTL),
		slog.String("stack", c.Stack),
		slog.String("loki_url", c.LokiURL),
		slog.String("victorialogs_url", c.VictoriaLogsURL),
		slog.String("grafana_url", c.GrafanaURL),
		slog.String("falco_url", c.FalcoURL),
		slog.String("falcosidekick_url", c.FalcosidekickURL),
		slog.String("store_dsn", redactDSN(c.StoreDSN)),
		slog.String("data_dir", c.DataDir),
		slog.Int("max_upload_bytes", c.MaxUploadBytes),
		slog.Int("max_jobs", c.MaxJobs),
		slog.String("file_roots", c.FileRoots),
		slog.String("source_urls", c.SourceURLs),
		slog.String("rules", c.Rules),
		slog.String("sigma_mapping", c.SigmaMapping),
		slog.Bool("llm_reasoning", c.LLMReasoning),
	)
}

// redactDSN hides the password of a database URL.
func redactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		if strings.Contains(dsn, "password") {
			return "[redacted]"
		}
		return dsn
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// String renders the config for fmt with the secrets redacted: the
// attributes of LogValue as key=value pairs.
func (c Config) String() string {
	var b strings.Builder
	for i, a := range c.LogValue().Group() {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(a.Key)
		b.WriteByte('=')
		b.WriteString(a.Value.String())
	}
	return b.String()
}

// GoString keeps %#v from printing the secrets.
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

// Roots splits FileRoots into its directories.
func (c Config) Roots() []string { return splitList(c.FileRoots) }

// SourceBases lists the base URLs investigation sources sent over the API
// may read: source_urls, and the stack's loki.url and victorialogs.url.
func (c Config) SourceBases() []string {
	out := splitList(c.SourceURLs)
	for _, u := range []string{c.LokiURL, c.VictoriaLogsURL} {
		if u != "" {
			out = append(out, u)
		}
	}
	return out
}

func splitList(v string) []string {
	var out []string
	for _, d := range strings.Split(v, ",") {
		if d = strings.TrimSpace(d); d != "" {
			out = append(out, d)
		}
	}
	return out
}

// checkBaseURL accepts an http(s) URL with a host and no credentials.
func checkBaseURL(v string) error {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL", v)
	}
	if u.User != nil {
		return errors.New("credentials in the URL are not accepted; use the username, password or API key settings")
	}
	return nil
}
