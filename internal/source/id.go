package source

import (
	"hash/crc64"
	"strconv"
	"unsafe"
)

// idRoom is the spare capacity reserved after each line copy so a derived
// id can usually be written into the same allocation.
const idRoom = 64

// own copies line into a fresh buffer with room for a derived id.
func own(line []byte) []byte {
	buf := make([]byte, len(line), len(line)+idRoom)
	copy(buf, line)
	return buf
}

// str views b as a string without copying. b must never be modified
// afterwards; the parser only ever appends past the viewed bytes.
func str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// idWriter builds a derived id in the spare capacity behind the line copy.
type idWriter struct{ b []byte }

func newIDWriter(buf []byte) idWriter { return idWriter{b: buf[len(buf):len(buf)]} }

func (w *idWriter) string(s string) { w.b = append(w.b, s...) }
func (w *idWriter) byte(c byte)     { w.b = append(w.b, c) }
func (w *idWriter) int(n int64)     { w.b = strconv.AppendInt(w.b, n, 10) }

// done returns the id; when it did not fit in the spare room append has
// already moved it to its own allocation, which is equally safe.
func (w *idWriter) done() string { return str(w.b) }

// crcTable is the CRC-64 table for hashID (the stdlib computes it with
// slicing-by-8, several times faster than a byte-wise hash on long lines).
var crcTable = crc64.MakeTable(crc64.ECMA)

// hashID is the fallback id, 16 hex digits: CRC-64 of the line bytes seeded
// with an FNV-1a hash of the input name and the line number, so the same
// line in the same place of the same input always gets the same id.
func hashID(buf []byte, name string, lineNo int64, line []byte) string {
	const offset64, prime64 = 14695981039346656037, 1099511628211
	sum := uint64(offset64)
	for i := 0; i < len(name); i++ {
		sum = (sum ^ uint64(name[i])) * prime64
	}
	for i := 0; i < 8; i++ {
		sum = (sum ^ (uint64(lineNo)>>(8*i))&0xff) * prime64
	}
	sum = crc64.Update(sum, crcTable, line)
	w := newIDWriter(buf)
	for i := 60; i >= 0; i -= 4 {
		w.byte(hexDigits[(sum>>uint(i))&0xf])
	}
	return w.done()
}

// replaceNonFinite rewrites bare NaN, Infinity and -Infinity tokens outside
// JSON strings as null, as emitted by Python's json.dumps. It returns the
// rewritten copy and whether anything was replaced.
func replaceNonFinite(b []byte) ([]byte, bool) {
	var out []byte
	last := 0
	inStr := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inStr {
			switch c {
			case '\\':
				i++
			case '"':
				inStr = false
			}
			continue
		}
		var n int
		switch c {
		case '"':
			inStr = true
			continue
		case 'N':
			n = tokenAt(b, i, "NaN")
		case 'I':
			n = tokenAt(b, i, "Infinity")
		case '-':
			n = tokenAt(b, i, "-Infinity")
		}
		if n == 0 {
			continue
		}
		if out == nil {
			out = make([]byte, 0, len(b)+8+idRoom)
		}
		out = append(out, b[last:i]...)
		out = append(out, "null"...)
		last = i + n
		i += n - 1
	}
	if out == nil {
		return b, false
	}
	return append(out, b[last:]...), true
}

// tokenAt returns len(tok) when tok starts at b[i] and is not part of a
// longer identifier.
func tokenAt(b []byte, i int, tok string) int {
	if len(b)-i < len(tok) || string(b[i:i+len(tok)]) != tok {
		return 0
	}
	if j := i + len(tok); j < len(b) && isIdentByte(b[j]) {
		return 0
	}
	if i > 0 && isIdentByte(b[i-1]) {
		return 0
	}
	return len(tok)
}

func isIdentByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}
