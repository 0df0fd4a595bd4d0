package source

import (
	"bufio"
	"fmt"
	"io"
)

// lineReader splits a stream into lines without ever holding more than
// max+1 bytes of one line: the rest of an oversized line is discarded as it
// is read.
type lineReader struct {
	r   *bufio.Reader
	max int
	no  int64  // number of the line last returned (1-based)
	acc []byte // reused for lines longer than the bufio buffer
}

// next returns the next line without its "\n" or "\r\n". The slice is only
// valid until the following call. At the end of input it returns io.EOF; an
// oversized line returns an error wrapping ErrLineTooLong and is skipped.
func (lr *lineReader) next() ([]byte, error) {
	chunk, err := lr.r.ReadSlice('\n')
	if err == nil || (err == io.EOF && len(chunk) > 0) {
		lr.no++
		line := trimEOL(chunk)
		if len(line) > lr.max {
			return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrLineTooLong, len(line), lr.max)
		}
		return line, nil
	}
	if err != bufio.ErrBufferFull {
		return nil, err // io.EOF with nothing left, or a read error
	}
	lr.no++
	lr.acc = append(lr.acc[:0], chunk...)
	for {
		chunk, err = lr.r.ReadSlice('\n')
		if len(lr.acc)+len(chunk) > lr.max+2 { // room for "\r\n"
			n := int64(len(lr.acc) + len(chunk))
			lr.acc = lr.acc[:0]
			for err == bufio.ErrBufferFull {
				chunk, err = lr.r.ReadSlice('\n')
				n += int64(len(chunk))
			}
			if err != nil && err != io.EOF {
				return nil, err
			}
			return nil, fmt.Errorf("%w: more than %d bytes (%d read), limit %d", ErrLineTooLong, lr.max, n, lr.max)
		}
		lr.acc = append(lr.acc, chunk...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil && err != io.EOF {
			return nil, err
		}
		line := trimEOL(lr.acc)
		if len(line) > lr.max {
			return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrLineTooLong, len(line), lr.max)
		}
		return line, nil
	}
}

func trimEOL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
	}
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	return b
}
