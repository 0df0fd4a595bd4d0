package source

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/Velocidex/ordereddict"
	"github.com/loupe-sec/loupe/internal/event"
	"github.com/loupe-sec/loupe/internal/source/evtxtest"
	"www.velocidex.com/golang/evtx"
)

// velocidexTestdata is evtxtest.File; velocidexTestdataPath evtxtest.Path.
var (
	velocidexTestdata     = evtxtest.File
	velocidexTestdataPath = evtxtest.Path
)

func readEVTXFile(t testing.TB, data []byte, name string) ([]*event.Event, []error) {
	t.Helper()
	var evs []*event.Event
	var errs []error
	for ev, err := range Read(context.Background(), bytes.NewReader(data), Options{Name: name}) {
		if err != nil {
			errs = append(errs, err)
			continue
		}
		evs = append(evs, ev)
	}
	return evs, errs
}

// libraryRecordCount counts the records of an .evtx file the way the
// library's own dump tool does (seeking, all chunks found up front).
func libraryRecordCount(t *testing.T, path string) int {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunks, err := evtx.GetChunks(f)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range chunks {
		recs, err := c.Parse(0)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if d, ok := r.Event.(*ordereddict.Dict); ok {
				if _, ok := d.Get("Event"); ok {
					n++
				}
			}
		}
	}
	return n
}

func TestReadBinaryEVTX(t *testing.T) {
	path := velocidexTestdata(t, "Security.evtx")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	evs, errs := readEVTXFile(t, data, "Security.evtx")
	if len(errs) > 0 {
		t.Fatalf("errors: %v", errs)
	}
	if want := libraryRecordCount(t, path); len(evs) != want || want == 0 {
		t.Fatalf("read %d records, the library's own reader finds %d", len(evs), want)
	}
	seen := map[string]bool{}
	var logon *event.Event
	logons := 0
	for i, ev := range evs {
		if ev.Format != event.FormatEVTX || ev.Channel != "Security" || ev.Host != "TestComputer" || ev.Time.IsZero() {
			t.Fatalf("record %d: format %v channel %q host %q time %v", i+1, ev.Format, ev.Channel, ev.Host, ev.Time)
		}
		if ev.Line != int64(i+1) {
			t.Fatalf("record %d has Line %d", i+1, ev.Line)
		}
		if seen[ev.ID] {
			t.Fatalf("duplicate id %s", ev.ID)
		}
		seen[ev.ID] = true
		if ev.EventID == 4624 {
			logons++
			if ev.ID == "TestComputer:Security:31880" {
				logon = ev
			}
		}
	}
	if logons == 0 || logon == nil {
		t.Fatalf("no 4624 logon record 31880 among %d logons", logons)
	}
	// The values of record 31880 as the library's golden fixture
	// (fixtures/Event4624_linux.golden) shows them.
	if logon.TargetUser != "user" || logon.User != "test" || logon.LogonType != 2 || logon.SrcIP != "::1" ||
		logon.Provider != "Microsoft-Windows-Security-Auditing" {
		t.Errorf("4624: target %q user %q type %d ip %q provider %q", logon.TargetUser, logon.User, logon.LogonType, logon.SrcIP, logon.Provider)
	}
	if got := logon.Time.Format("2006-01-02T15:04:05.000000Z"); got != "2019-02-06T14:18:35.946133Z" {
		t.Errorf("4624 time %s", got)
	}
	if v, _ := logon.Data("ProcessName"); v != `C:\Windows\System32\svchost.exe` {
		t.Errorf("Data(ProcessName) = %q", v)
	}
	if v, _ := logon.Data("ElevatedToken"); v != "%%1843" {
		t.Errorf("Data(ElevatedToken) = %q", v)
	}

	// The same file gzip-compressed reads the same.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(data)
	zw.Close()
	zevs, zerrs := readEVTXFile(t, gz.Bytes(), "Security.evtx")
	if len(zerrs) > 0 || len(zevs) != len(evs) || zevs[len(zevs)-1].ID != evs[len(evs)-1].ID {
		t.Errorf("gzip: %d events, errors %v", len(zevs), zerrs)
	}
}

func TestReadBinaryEVTXErrors(t *testing.T) {
	data, err := os.ReadFile(velocidexTestdata(t, "Security_1_record.evtx"))
	if err != nil {
		t.Fatal(err)
	}
	evs, errs := readEVTXFile(t, data, "one.evtx")
	if len(evs) == 0 || len(errs) > 0 {
		t.Fatalf("Security_1_record.evtx: %d events, errors %v", len(evs), errs)
	}

	// Cut inside the first chunk: the records before the cut are lost
	// with their chunk, and the error says where.
	_, errs = readEVTXFile(t, data[:4096+1000], "cut.evtx")
	if len(errs) != 1 || !errors.Is(errs[0], ErrEVTX) || !strings.Contains(errs[0].Error(), "truncated") {
		t.Errorf("truncated file: %v", errs)
	}

	// A wrong version is refused.
	bad := bytes.Clone(data)
	bad[38] = 9 // MajorVersion
	_, errs = readEVTXFile(t, bad, "v9.evtx")
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "unsupported version") {
		t.Errorf("bad version: %v", errs)
	}

	// A corrupt chunk is one error naming it; reading goes on with the
	// next chunk.
	full, err := os.ReadFile(velocidexTestdata(t, "Security.evtx"))
	if err != nil {
		t.Fatal(err)
	}
	all, _ := readEVTXFile(t, full, "Security.evtx")
	bad = bytes.Clone(full)
	second := 4096 + 0x10000
	for i := second + 0x200; i < second+0x400; i++ {
		bad[i] ^= 0x5a
	}
	evs, errs = readEVTXFile(t, bad, "corrupt.evtx")
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "chunk 1: event records checksum") {
		t.Errorf("corrupt chunk: errors %v", errs)
	}
	if len(evs) == 0 || len(evs) >= len(all) || evs[len(evs)-1].ID != all[len(all)-1].ID {
		t.Errorf("corrupt chunk: %d of %d events, last %s", len(evs), len(all), evs[len(evs)-1].ID)
	}

	// Where clients are not trusted with binary input it is refused.
	var refused []error
	for _, err := range Read(context.Background(), bytes.NewReader(data), Options{Name: "upload", RefuseEVTX: true}) {
		refused = append(refused, err)
	}
	if len(refused) != 1 || !errors.Is(refused[0], ErrEVTX) || !strings.Contains(refused[0].Error(), "not accepted") {
		t.Errorf("RefuseEVTX: %v", refused)
	}

	// Cancellation stops reading.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, err := range Read(ctx, bytes.NewReader(data), Options{}) {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled read yielded %v", err)
		}
	}
}

func FuzzReadEVTX(f *testing.F) {
	if p := velocidexTestdataPath("Security_1_record.evtx"); p != "" {
		if data, err := os.ReadFile(p); err == nil && len(data) > 4096 {
			f.Add(data[4096:min(len(data), 4096+0x10000)])
		}
	}
	f.Add([]byte("ElfChnk\x00"))
	head := make([]byte, 4096)
	copy(head, evtxMagic)
	head[36], head[38] = 1, 3 // version 3.1
	head[40], head[41] = 0x00, 0x10
	f.Fuzz(func(t *testing.T, chunk []byte) {
		in := append(bytes.Clone(head), chunk...)
		for ev, err := range Read(context.Background(), bytes.NewReader(in), Options{Name: "fuzz"}) {
			if err != nil {
				continue
			}
			if ev.Format != event.FormatEVTX && ev.Format != event.FormatJSON {
				t.Fatalf("format %v", ev.Format)
			}
			if !validJSON(str(ev.Raw)) {
				t.Fatalf("invalid JSON raw %q", ev.Raw)
			}
		}
	})
}

// FuzzEVTXRecordJSON renders records of any values the library can give
// (strings with any bytes, floats including NaN, big unsigned numbers,
// binary data, lists, nesting) and requires valid JSON that parses as an
// EVTX event.
func FuzzEVTXRecordJSON(f *testing.F) {
	f.Add("TargetUserName", "user", 1549462715.946133, uint64(4624), []byte{0xde, 0xad})
	f.Add("\xff\x00\"", "a\x00\x00", math.NaN(), uint64(math.MaxUint64), []byte(nil))
	f.Add("", "", -1e300, uint64(0), []byte("x"))
	f.Fuzz(func(t *testing.T, key, s string, fl float64, u uint64, bin []byte) {
		data := ordereddict.NewDict().Set(key, s).Set("Bin", bin).Set("List", []any{s, fl, u, nil, true}).Set("Strings", []string{s, key})
		system := ordereddict.NewDict().
			Set("EventID", ordereddict.NewDict().Set("Value", u)).
			Set("TimeCreated", ordereddict.NewDict().Set("SystemTime", fl)).
			Set("EventRecordID", u).Set("Computer", s).Set("Channel", key)
		rec := &evtx.EventRecord{Event: ordereddict.NewDict().Set("Event", ordereddict.NewDict().Set("System", system).Set("EventData", data))}
		line := appendEVTXRecord(nil, rec)
		if !validJSON(str(line)) {
			t.Fatalf("invalid JSON %q", line)
		}
		ev, err := parse(own(line), 1, &Options{Name: "fuzz"})
		if err != nil || ev.Format != event.FormatEVTX {
			t.Fatalf("parse: %v, %v: %s", ev, err, line)
		}
		if fl > 1 && fl < 1e11 && ev.Time.IsZero() {
			t.Fatalf("SystemTime %v gave no time: %s", fl, line)
		}
	})
}
