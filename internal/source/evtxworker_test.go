package source

import (
	"bytes"
	"errors"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/loupe-sec/loupe/internal/source/evtxtest"
)

// TestMain lets this test binary serve as the EVTX worker of the tests
// that isolate parsing.
func TestMain(m *testing.M) {
	if RunEVTXWorker() {
		return
	}
	os.Exit(m.Run())
}

func isolate(t *testing.T, mem int64, timeout time.Duration) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Skip("no executable to start as a worker:", err)
	}
	IsolateEVTX(&Isolation{Exe: exe, MemoryBytes: mem, ChunkTimeout: timeout})
	t.Cleanup(func() { IsolateEVTX(nil) })
}

// A worker reads exactly what this process reads.
func TestEVTXWorkerSameEvents(t *testing.T) {
	data, err := os.ReadFile(velocidexTestdata(t, "Security.evtx"))
	if err != nil {
		t.Fatal(err)
	}
	want, wantErrs := readEVTXFile(t, data, "Security.evtx")
	isolate(t, 1<<30, time.Minute)
	got, gotErrs := readEVTXFile(t, data, "Security.evtx")
	if len(got) != len(want) || len(gotErrs) != len(wantErrs) || len(got) < 100 {
		t.Fatalf("isolated: %d events %d errors, in process: %d events %d errors", len(got), len(gotErrs), len(want), len(wantErrs))
	}
	for i := range got {
		if got[i].ID != want[i].ID || got[i].Line != want[i].Line || !bytes.Equal(got[i].Raw, want[i].Raw) {
			t.Fatalf("event %d differs: %s line %d, in process %s line %d", i, got[i].ID, got[i].Line, want[i].ID, want[i].Line)
		}
	}
}

// The hostile chunk costs its worker, not this process: it is one error
// naming the limit, and the next chunk is read by a new worker.
func TestEVTXWorkerContainsBomb(t *testing.T) {
	data := evtxtest.Bomb(t)
	if err := checkEVTXChunk(data[4096 : 4096+evtxChunkSize]); err != nil {
		t.Fatal("the hostile chunk's checksums do not hold:", err)
	}
	isolate(t, 256<<20, 30*time.Second)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	evs, errs := readEVTXFile(t, data, "bomb.evtx")
	runtime.ReadMemStats(&after)
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "chunk 0: the parser was stopped: it ran out of its 256 MiB memory limit") {
		t.Fatalf("errors %v", errs)
	}
	var le *LineError
	if !errors.As(errs[0], &le) {
		t.Errorf("%v is not a LineError", errs[0])
	}
	if len(evs) != 1 || evs[0].EventID == 0 {
		t.Fatalf("events after the hostile chunk: %d", len(evs))
	}
	if grew := int64(after.HeapSys) - int64(before.HeapSys); grew > 64<<20 {
		t.Errorf("this process's heap grew by %d MiB", grew>>20)
	}
	t.Logf("contained in %s", time.Since(start))

	// A worker that takes too long over a chunk is stopped as well.
	isolate(t, 8<<30, 50*time.Millisecond)
	_, errs = readEVTXFile(t, data, "slow.evtx")
	if len(errs) == 0 || !strings.Contains(errs[0].Error(), "time limit") {
		t.Errorf("time limit: %v", errs)
	}
}

// Reading a binary event log in process and through a worker.
func BenchmarkReadBinaryEVTX(b *testing.B) {
	data, err := os.ReadFile(evtxtest.File(b, "Security.evtx"))
	if err != nil {
		b.Fatal(err)
	}
	for _, mode := range []string{"in-process", "worker"} {
		b.Run(mode, func(b *testing.B) {
			if mode == "worker" {
				exe, err := os.Executable()
				if err != nil {
					b.Skip(err)
				}
				IsolateEVTX(&Isolation{Exe: exe, MemoryBytes: 1 << 30, ChunkTimeout: time.Minute})
				defer IsolateEVTX(nil)
			}
			b.SetBytes(int64(len(data)))
			n := 0
			start := time.Now()
			for b.Loop() {
				evs, errs := readEVTXFile(b, data, "Security.evtx")
				if len(errs) > 0 {
					b.Fatal(errs[0])
				}
				n += len(evs)
			}
			b.ReportMetric(float64(n)/time.Since(start).Seconds(), "events/s")
		})
	}
}
