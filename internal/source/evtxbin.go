package source

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/Velocidex/ordereddict"
	"github.com/loupe-sec/loupe/internal/event"
	"www.velocidex.com/golang/evtx"
)

// Binary Windows event logs (.evtx) are read with www.velocidex.com/golang/evtx
// one 64 KiB chunk at a time, straight from the stream (no seeking, so stdin
// and HTTP bodies work too), and every record is rendered as the EVTX-as-JSON
// shape the JSON parser already reads: {"Event":{"System":{…},"EventData":{…}}}.

// evtxMagic starts every .evtx file.
const evtxMagic = "ElfFile\x00"

const (
	evtxFileHeaderSize = 128 // bytes of the file header that are read
	evtxChunkSize      = evtx.EVTX_CHUNK_SIZE
	evtxChunkMagic     = evtx.EVTX_CHUNK_HEADER_MAGIC
)

// ErrEVTX is wrapped by errors about a malformed .evtx file or chunk.
var ErrEVTX = errors.New("evtx")

// isEVTX reports whether a stream starting with head is a binary event log.
func isEVTX(head []byte) bool { return string(head) == evtxMagic }

// evtxFileHeader is the part of the file header needed to find the chunks.
type evtxFileHeader struct {
	Magic           [8]byte
	FirstChunk      uint64
	LastChunk       uint64
	NextRecordID    uint64
	HeaderSize      uint32
	MinorVersion    uint16
	MajorVersion    uint16
	HeaderBlockSize uint16
}

// readEVTX yields the records of the binary event log r, chunk by chunk. A
// chunk the library cannot parse yields one *LineError (its Line is the
// number of the last record read so far) and reading goes on; a truncated
// file or an I/O error ends the sequence after yielding it. Record numbers
// (Event.Line) count records from 1 in file order.
func readEVTX(ctx context.Context, r io.Reader, opt *Options, yield func(*event.Event, error) bool) {
	var hb [evtxFileHeaderSize]byte
	if _, err := io.ReadFull(r, hb[:]); err != nil {
		yield(nil, fmt.Errorf("read %s: %w: file header: %w", opt.displayName(), ErrEVTX, err))
		return
	}
	var h evtxFileHeader
	_ = binary.Read(bytes.NewReader(hb[:]), binary.LittleEndian, &h) // fixed size, cannot fail
	if h.MajorVersion != 3 || h.MinorVersion > 2 {
		yield(nil, fmt.Errorf("read %s: %w: unsupported version %d.%d", opt.displayName(), ErrEVTX, h.MajorVersion, h.MinorVersion))
		return
	}
	if h.HeaderBlockSize < evtxFileHeaderSize {
		yield(nil, fmt.Errorf("read %s: %w: header block size %d", opt.displayName(), ErrEVTX, h.HeaderBlockSize))
		return
	}
	if _, err := io.CopyN(io.Discard, r, int64(h.HeaderBlockSize)-evtxFileHeaderSize); err != nil {
		yield(nil, fmt.Errorf("read %s: %w: file header: %w", opt.displayName(), ErrEVTX, err))
		return
	}
	chunk := make([]byte, evtxChunkSize)
	var lineNo int64
	var scratch []byte
	iso := isolation.Load()
	var w *worker
	defer func() {
		if w != nil {
			w.close()
		}
	}()
	for n := 0; ; n++ {
		if err := ctx.Err(); err != nil {
			yield(nil, err)
			return
		}
		got, err := io.ReadFull(r, chunk)
		if err == io.EOF {
			return
		}
		if err != nil {
			if err == io.ErrUnexpectedEOF {
				err = fmt.Errorf("%w: chunk %d truncated at %d of %d bytes", ErrEVTX, n, got, evtxChunkSize)
			}
			yield(nil, fmt.Errorf("read %s: %w", opt.displayName(), err))
			return
		}
		if string(chunk[:len(evtxChunkMagic)]) != evtxChunkMagic {
			continue // unused (zeroed) chunk space
		}
		stop := false
		each := func(rec []byte) {
			lineNo++
			if stop || rec == nil {
				return // stopped, or not an event (the library found no Event element)
			}
			ev, perr := parse(own(rec), lineNo, opt)
			if perr != nil {
				stop = !yield(nil, &LineError{Line: lineNo, Err: perr})
				return
			}
			stop = !yield(ev, nil)
		}
		if iso != nil && w == nil {
			if w, err = startWorker(iso); err != nil {
				yield(nil, fmt.Errorf("read %s: %w", opt.displayName(), err))
				return
			}
		}
		if w != nil {
			err = w.chunk(chunk, each)
			if errors.Is(err, errWorker) {
				w = nil // gone; the next chunk starts another
			}
		} else {
			err = renderChunk(chunk, &scratch, each)
		}
		if stop {
			return
		}
		if err != nil && !yield(nil, &LineError{Line: lineNo, Err: fmt.Errorf("%w: chunk %d: %w", ErrEVTX, n, err)}) {
			return
		}
	}
}

// parseEVTXChunk parses one chunk held in memory. The library reads through
// an io.ReadSeeker and trusts offsets inside the chunk, so a hostile chunk
// can make it panic; that becomes an error for this chunk only.
func parseEVTXChunk(buf []byte) (records []*evtx.EventRecord, err error) {
	defer func() {
		if p := recover(); p != nil {
			records, err = nil, fmt.Errorf("malformed chunk: %v", p)
		}
	}()
	if err := checkEVTXChunk(buf); err != nil {
		return nil, err
	}
	c := &evtx.Chunk{Fd: bytes.NewReader(buf)}
	if err := binary.Read(bytes.NewReader(buf), binary.LittleEndian, &c.Header); err != nil {
		return nil, err
	}
	if c.Header.LastEventRecNumber < c.Header.FirstEventRecNumber ||
		c.Header.LastEventRecNumber-c.Header.FirstEventRecNumber > evtxChunkSize/evtx.EVTX_EVENT_RECORD_SIZE {
		return nil, fmt.Errorf("record numbers %d..%d do not fit in a chunk", c.Header.FirstEventRecNumber, c.Header.LastEventRecNumber)
	}
	return c.Parse(0)
}

// checkEVTXChunk verifies the two CRC-32 checksums Windows writes in every
// chunk header: one over the header itself (bytes 0x00–0x78 and 0x80–0x200)
// and one over the event records (0x200 up to the free-space offset). The
// library trusts the counts inside records (a corrupt argument count makes
// it loop and allocate for billions of iterations), so a chunk whose bytes
// are not the ones Windows wrote is refused before it is parsed.
func checkEVTXChunk(buf []byte) error {
	le := binary.LittleEndian
	free := le.Uint32(buf[0x30:])
	if free < evtx.EVTX_CHUNK_HEADER_SIZE || free > evtxChunkSize {
		return fmt.Errorf("free space offset %#x out of range", free)
	}
	if got, want := crc32.ChecksumIEEE(buf[0x200:free]), le.Uint32(buf[0x34:]); got != want {
		return fmt.Errorf("event records checksum %#08x, header says %#08x", got, want)
	}
	h := crc32.Update(crc32.ChecksumIEEE(buf[:0x78]), crc32.IEEETable, buf[0x80:0x200])
	if want := le.Uint32(buf[0x7c:]); h != want {
		return fmt.Errorf("chunk header checksum %#08x, header says %#08x", h, want)
	}
	return nil
}

// appendEVTXRecord appends the record as {"Event":{…}} JSON to b, or
// returns nil when the record has no Event element.
func appendEVTXRecord(b []byte, rec *evtx.EventRecord) []byte {
	d, ok := rec.Event.(*ordereddict.Dict)
	if !ok {
		return nil
	}
	ev, ok := d.Get("Event")
	if !ok {
		return nil
	}
	if _, ok := ev.(*ordereddict.Dict); !ok {
		return nil
	}
	b = append(b, `{"Event":`...)
	b = appendEVTXValue(b, "", ev, 0)
	return append(b, '}')
}

// evtxMaxDepth bounds the nesting rendered from one record.
const evtxMaxDepth = 64

// appendEVTXValue renders one value of an expanded record as JSON. key is
// the member name the value belongs to: SystemTime, which the library
// gives as float seconds, becomes an RFC 3339 time with microseconds (the
// precision a float64 keeps for current dates).
func appendEVTXValue(b []byte, key string, v any, depth int) []byte {
	if depth > evtxMaxDepth {
		return append(b, "null"...)
	}
	switch x := v.(type) {
	case nil:
		return append(b, "null"...)
	case *ordereddict.Dict:
		if x == nil {
			return append(b, "null"...)
		}
		b = append(b, '{')
		for i, k := range x.Keys() {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, validUTF8(k))
			b = append(b, ':')
			val, _ := x.Get(k)
			b = appendEVTXValue(b, k, val, depth+1)
		}
		return append(b, '}')
	case []any:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendEVTXValue(b, "", e, depth+1)
		}
		return append(b, ']')
	case []string:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, validUTF8(e))
		}
		return append(b, ']')
	case string:
		return appendJSONString(b, validUTF8(strings.TrimRight(x, "\x00")))
	case []byte:
		return appendJSONString(b, hex.EncodeToString(x))
	case bool:
		return strconv.AppendBool(b, x)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return append(b, "null"...)
		}
		if key == "SystemTime" && x > 0 && x < 1e11 {
			sec, frac := math.Modf(x)
			t := time.Unix(int64(sec), int64(frac*1e9)).UTC().Round(time.Microsecond)
			b = append(b, '"')
			b = t.AppendFormat(b, time.RFC3339Nano)
			return append(b, '"')
		}
		return strconv.AppendFloat(b, x, 'f', -1, 64)
	case float32:
		return appendEVTXValue(b, key, float64(x), depth)
	case int:
		return strconv.AppendInt(b, int64(x), 10)
	case int8:
		return strconv.AppendInt(b, int64(x), 10)
	case int16:
		return strconv.AppendInt(b, int64(x), 10)
	case int32:
		return strconv.AppendInt(b, int64(x), 10)
	case int64:
		return strconv.AppendInt(b, x, 10)
	case uint:
		return strconv.AppendUint(b, uint64(x), 10)
	case uint8:
		return strconv.AppendUint(b, uint64(x), 10)
	case uint16:
		return strconv.AppendUint(b, uint64(x), 10)
	case uint32:
		return strconv.AppendUint(b, uint64(x), 10)
	case uint64:
		return strconv.AppendUint(b, x, 10)
	}
	return appendJSONString(b, validUTF8(fmt.Sprint(v)))
}

func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
