// Package evtxtest gives tests binary event logs: the sample files the
// module www.velocidex.com/golang/evtx v0.2.0 (Apache-2.0) ships, read in
// place from the module cache, and a hostile file made from one of them.
package evtxtest

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Path returns the path of a sample file of the evtx module, or "" when
// the module cache does not hold it.
func Path(name string) string {
	dir := os.Getenv("GOMODCACHE")
	if dir == "" {
		gp := os.Getenv("GOPATH")
		if gp == "" {
			home, _ := os.UserHomeDir()
			gp = filepath.Join(home, "go")
		}
		dir = filepath.Join(strings.Split(gp, string(os.PathListSeparator))[0], "pkg", "mod")
	}
	p := filepath.Join(dir, "www.velocidex.com", "golang", "evtx@v0.2.0", "testdata", name)
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}

// File returns the path of a sample file, skipping the test when it is
// missing.
func File(tb testing.TB, name string) string {
	tb.Helper()
	p := Path(name)
	if p == "" {
		tb.Skipf("EVTX test file %s missing from the module cache: run `go mod download www.velocidex.com/golang/evtx` first", name)
	}
	return p
}

// Bomb is Security_1_record.evtx with its one chunk turned hostile — the
// template instance's substitution count (at 0x786 of the chunk) set to
// 2^31-1, both checksums recomputed — followed by the original chunk
// again. Parsed in process, the first chunk allocates until memory runs
// out; the second holds one good record.
func Bomb(tb testing.TB) []byte {
	tb.Helper()
	data, err := os.ReadFile(File(tb, "Security_1_record.evtx"))
	if err != nil {
		tb.Fatal(err)
	}
	const chunk = 0x10000
	head, good := data[:4096], data[4096:4096+chunk]
	bad := bytes.Clone(good)
	le := binary.LittleEndian
	le.PutUint32(bad[0x786:], 0x7fffffff)
	le.PutUint32(bad[0x34:], crc32.ChecksumIEEE(bad[0x200:le.Uint32(bad[0x30:])]))
	le.PutUint32(bad[0x7c:], crc32.Update(crc32.ChecksumIEEE(bad[:0x78]), crc32.IEEETable, bad[0x80:0x200]))
	return append(append(bytes.Clone(head), bad...), good...)
}
