// Package demo embeds a small synthetic intrusion corpus (copies of the
// Windows, Linux and Falco files of testdata/attack; the Timesketch files
// there repeat the same events in another shape and are left out) so
// `loupe analyze --demo` works without any input files.
package demo

import (
	"embed"
	"io/fs"
	"sort"
)

//go:embed corpus
var corpus embed.FS

// FS holds the corpus files at its root.
var FS fs.FS = mustSub(corpus, "corpus")

func mustSub(f fs.FS, dir string) fs.FS {
	s, err := fs.Sub(f, dir)
	if err != nil {
		panic(err) // the embed pattern guarantees dir exists
	}
	return s
}

// Files lists the corpus file names in sorted order.
func Files() []string {
	entries, err := fs.ReadDir(FS, ".")
	if err != nil {
		panic(err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if e.Type().IsRegular() {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names
}
