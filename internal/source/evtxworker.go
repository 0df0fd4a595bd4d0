package source

// Binary event logs parsed in a child process.
//
// The evtx library trusts the counts inside a record: a chunk whose
// checksums are valid but whose template instance claims two billion
// substitutions makes it allocate until the machine runs out of memory (a
// 69 KB file is enough). The checksums keep corrupted files out, not
// crafted ones. With IsolateEVTX, each reader hands its chunks to a worker:
// this same binary started again with LOUPE_EVTX_WORKER set and the one
// argument --loupe-evtx-worker, under an address-space limit and a heap
// watchdog, and each chunk under a time limit. A chunk that breaks a limit
// costs the worker, not the server: it is reported as a LineError and a
// new worker takes the next chunk.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Isolation says how to start EVTX workers.
type Isolation struct {
	Exe          string        // the binary to start; its main must call RunEVTXWorker first
	MemoryBytes  int64         // heap a worker may grow to, beyond its start-up address space
	ChunkTimeout time.Duration // time a worker may take over one 64 KiB chunk
}

var isolation atomic.Pointer[Isolation]

// IsolateEVTX makes every reader of binary event logs parse their chunks in
// worker processes as iso says; nil parses in this process again.
func IsolateEVTX(iso *Isolation) { isolation.Store(iso) }

// DefaultIsolation isolates with this executable, 1 GiB and 60 s a chunk.
func DefaultIsolation() (*Isolation, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return &Isolation{Exe: exe, MemoryBytes: 1 << 30, ChunkTimeout: time.Minute}, nil
}

const (
	workerEnv    = "LOUPE_EVTX_WORKER"     // set (to the memory budget in bytes) in a worker's environment
	workerArg    = "--loupe-evtx-worker"   // and its one argument: both, so no one becomes a worker by accident
	workerRecord = 'R'                     // a rendered record follows
	workerSkip   = '-'                     // a record without an Event element
	workerError  = 'E'                     // the chunk could not be parsed; the reason follows
	workerEnd    = '.'                     // end of the chunk's answer
	workerStderr = 4 << 10                 // bytes of a worker's standard error kept for the report (its first)
	workerAnswer = 2*evtxChunkSize + 1<<20 // longest line of an answer (a record rendered from a 64 KiB chunk)
)

// RunEVTXWorker serves EVTX chunks on standard input and output until
// input ends, when this process was started as a worker, and reports
// whether it was; a main function calls it first:
//
//	if source.RunEVTXWorker() { return }
func RunEVTXWorker() bool {
	v := os.Getenv(workerEnv)
	if v == "" || len(os.Args) != 2 || os.Args[1] != workerArg {
		return false
	}
	if budget, err := strconv.ParseInt(v, 10, 64); err == nil && budget > 0 {
		if !raceBuild {
			limitAddressSpace(budget)
		}
		go watchHeap(budget)
	}
	if err := serveChunks(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "evtx worker:", err)
		os.Exit(1)
	}
	return true
}

// limitAddressSpace caps the process's address space at what it uses now
// plus budget bytes, so a runaway allocation fails here.
func limitAddressSpace(budget int64) {
	var used int64
	if b, err := os.ReadFile("/proc/self/statm"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			pages, _ := strconv.ParseInt(f[0], 10, 64)
			used = pages * int64(os.Getpagesize())
		}
	}
	lim := uint64(used + budget)
	syscall.Setrlimit(syscall.RLIMIT_AS, &syscall.Rlimit{Cur: lim, Max: lim})
}

// watchHeap ends the worker when its heap grows past budget: a second
// guard beside the address-space limit, and the only one in race builds.
func watchHeap(budget int64) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	for range time.Tick(5 * time.Millisecond) {
		metrics.Read(sample)
		if used := sample[0].Value.Uint64(); used > uint64(budget) {
			fmt.Fprintf(os.Stderr, "evtx worker: out of memory: heap of %d MiB is over the limit of %d MiB\n", used>>20, budget>>20)
			os.Exit(2)
		}
	}
}

// serveChunks answers each 64 KiB chunk read from in with one line per
// record and an end line.
func serveChunks(in io.Reader, out io.Writer) error {
	w := bufio.NewWriterSize(out, 64<<10)
	chunk := make([]byte, evtxChunkSize)
	var scratch []byte
	for {
		if _, err := io.ReadFull(in, chunk); err == io.EOF {
			return w.Flush()
		} else if err != nil {
			return err
		}
		err := renderChunk(chunk, &scratch, func(rec []byte) {
			if rec == nil {
				w.WriteByte(workerSkip)
			} else {
				w.WriteByte(workerRecord)
				w.Write(rec)
			}
			w.WriteByte('\n')
		})
		if err != nil {
			w.WriteByte(workerError)
			w.WriteString(strings.ReplaceAll(err.Error(), "\n", " "))
			w.WriteByte('\n')
		}
		w.WriteByte(workerEnd)
		w.WriteByte('\n')
		if err := w.Flush(); err != nil {
			return err
		}
	}
}

// renderChunk parses a chunk in this process and calls fn with each
// record rendered as JSON (nil for a record without an Event element); the
// slice is reused.
func renderChunk(chunk []byte, scratch *[]byte, fn func([]byte)) error {
	records, err := parseEVTXChunk(chunk)
	if err != nil {
		return err
	}
	for _, rec := range records {
		*scratch = appendEVTXRecord((*scratch)[:0], rec)
		fn(*scratch)
	}
	return nil
}

// worker is one running worker process.
type worker struct {
	iso    *Isolation
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *bufio.Reader
	stderr *headBuffer
}

func startWorker(iso *Isolation) (*worker, error) {
	cmd := exec.Command(iso.Exe, workerArg)
	// Nothing of this process's environment (tokens, keys) is passed on.
	cmd.Env = []string{workerEnv + "=" + strconv.FormatInt(iso.MemoryBytes, 10)}
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	w := &worker{iso: iso, cmd: cmd, in: in, out: bufio.NewReaderSize(out, workerAnswer), stderr: &headBuffer{max: workerStderr}}
	cmd.Stderr = w.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start evtx worker %s: %w", iso.Exe, err)
	}
	return w, nil
}

// errWorker marks a chunk the worker did not survive.
var errWorker = errors.New("the parser was stopped")

// chunk sends one chunk and calls fn with each record of the answer. An
// error wrapping errWorker means the worker is gone.
func (w *worker) chunk(chunk []byte, fn func([]byte)) error {
	var timedOut atomic.Bool
	timer := time.AfterFunc(w.iso.ChunkTimeout, func() {
		timedOut.Store(true)
		w.cmd.Process.Kill()
	})
	defer timer.Stop()
	if _, err := w.in.Write(chunk); err != nil {
		return w.failed(&timedOut)
	}
	var chunkErr error
	for {
		line, err := w.out.ReadSlice('\n')
		if err != nil {
			return w.failed(&timedOut)
		}
		line = line[:len(line)-1]
		if len(line) == 0 {
			return fmt.Errorf("%w: empty answer line", errWorker)
		}
		switch line[0] {
		case workerRecord:
			fn(line[1:])
		case workerSkip:
			fn(nil)
		case workerError:
			chunkErr = errors.New(string(line[1:]))
		case workerEnd:
			return chunkErr
		default:
			return fmt.Errorf("%w: unexpected answer %.40q", errWorker, line)
		}
	}
}

// failed waits for a worker that stopped answering and says why it stopped.
func (w *worker) failed(timedOut *atomic.Bool) error {
	w.cmd.Process.Kill()
	w.in.Close()
	w.cmd.Wait()
	switch tail := w.stderr.String(); {
	case timedOut.Load():
		return fmt.Errorf("%w after %s (time limit)", errWorker, w.iso.ChunkTimeout)
	case strings.Contains(tail, "out of memory"):
		return fmt.Errorf("%w: it ran out of its %d MiB memory limit", errWorker, w.iso.MemoryBytes>>20)
	default:
		return fmt.Errorf("%w: %s (%s)", errWorker, w.cmd.ProcessState, firstTextLine(tail))
	}
}

// close ends the worker after its last chunk.
func (w *worker) close() {
	w.in.Close()
	done := make(chan struct{})
	go func() { w.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		w.cmd.Process.Kill()
		<-done
	}
}

func firstTextLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return l
		}
	}
	return "no message"
}

// headBuffer keeps the first max bytes written to it (where the Go
// runtime puts the reason it stopped).
type headBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (t *headBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if room := t.max - t.buf.Len(); room > 0 {
		t.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (t *headBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.buf.String()
}
