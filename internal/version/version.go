// Package version tells which loupe build is running.
package version

import (
	"runtime/debug"
	"strings"
)

// Version is set at link time:
//
//	go build -ldflags "-X github.com/loupe-sec/loupe/internal/version.Version=v1.2.3" ./cmd/loupe
//
// When empty, the module version from the build info is used.
var Version = ""

// String returns the version, e.g. "v1.2.3" or "(devel) a1b2c3d4e5f6-dirty".
func String() string {
	v := Version
	info, ok := debug.ReadBuildInfo()
	if v == "" && ok {
		v = info.Main.Version
	}
	if v == "" {
		v = "(devel)"
	}
	if !ok || v != "(devel)" {
		return v
	}
	var rev, dirty string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev != "" {
		v += " " + rev + dirty
	}
	return strings.TrimSpace(v)
}
