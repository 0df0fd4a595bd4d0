package main

import (
	"bytes"
	"sync"
	"sync/atomic"

	"github.com/loupe-sec/loupe/internal/pipeline"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type testStats struct {
	stats *pipeline.Stats
	read  *atomic.Int64
}

func newStatsForTest() testStats {
	return testStats{stats: new(pipeline.Stats), read: new(atomic.Int64)}
}
