package gguftiny

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/ollama/ollama/fs/ggml"
)

// TestDecodeWithOllama reads the written file back with Ollama's own GGUF
// decoder and checks what llama.cpp needs to load it.
func TestDecodeWithOllama(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tiny.gguf")
	var b bytes.Buffer
	if err := Write(&b, Options{}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	g, err := ggml.Decode(f, -1)
	if err != nil {
		t.Fatalf("ollama cannot decode it: %v", err)
	}
	kv := g.KV()
	if kv.Architecture() != "llama" || kv.BlockCount() != 1 || kv.EmbeddingLength() != 64 || kv.ContextLength() != 8192 {
		t.Errorf("hyperparameters: arch %q blocks %d width %d context %d", kv.Architecture(), kv.BlockCount(), kv.EmbeddingLength(), kv.ContextLength())
	}
	tokens := kv.Strings("tokenizer.ggml.tokens")
	v := newVocab(DefaultToolCall)
	if len(tokens) != len(v.tokens) || tokens[eosID] != "</s>" || tokens[v.id["<0x0A>"]] != "<0x0A>" {
		t.Fatalf("vocabulary of %d tokens, want %d", len(tokens), len(v.tokens))
	}
	if n := len(kv.Ints("tokenizer.ggml.token_type")); n != len(tokens) {
		t.Errorf("%d token types for %d tokens", n, len(tokens))
	}
	want := map[string][]uint64{
		"token_embd.weight":        {64, uint64(len(tokens))},
		"output.weight":            {64, uint64(len(tokens))},
		"output_norm.weight":       {64},
		"blk.0.attn_q.weight":      {64, 64},
		"blk.0.ffn_down.weight":    {128, 64},
		"blk.0.ffn_gate.weight":    {64, 128},
		"blk.0.attn_output.weight": {64, 64},
	}
	got := 0
	for _, ts := range g.Tensors().Items() {
		if ts.Offset%Alignment != 0 {
			t.Errorf("%s at offset %d, not aligned to %d", ts.Name, ts.Offset, Alignment)
		}
		if ts.Kind != ggmlF32 {
			t.Errorf("%s of kind %d, want F32", ts.Name, ts.Kind)
		}
		if w, ok := want[ts.Name]; ok {
			got++
			if len(w) != len(ts.Shape) || w[0] != ts.Shape[0] || len(w) > 1 && w[1] != ts.Shape[1] {
				t.Errorf("%s shape %v, want %v", ts.Name, ts.Shape, w)
			}
		}
	}
	if got != len(want) || len(g.Tensors().Items()) != 3+9 {
		t.Errorf("%d tensors, %d of the expected ones", len(g.Tensors().Items()), got)
	}
	// The data section ends the file: the last tensor's data reaches its end.
	last := g.Tensors().Items()[len(g.Tensors().Items())-1]
	if end := g.Tensors().Offset + last.Offset + last.Size(); int64(end) != int64(b.Len()) {
		t.Errorf("data ends at %d, file is %d bytes", end, b.Len())
	}
}

// TestBigram runs the part of the forward pass that carries the bigram
// table (embedding, final RMS norm, output matrix) on the written weights,
// skipping the small-weighted layer, and checks that every state prefers
// its table's first choice by a wide margin.
func TestBigram(t *testing.T) {
	o, _ := Options{}.withDefaults()
	v := newVocab(o.ToolCall)
	ts, err := build(o, v)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string][]float32{}
	for _, x := range ts {
		byName[x.name] = x.data
	}
	embd, out := byName["token_embd.weight"], byName["output.weight"]
	d := o.Dim
	for state, prefs := range next(o) {
		x := embd[v.id[state]*d : (v.id[state]+1)*d]
		var ss float64
		for _, e := range x {
			ss += float64(e) * float64(e)
		}
		inv := 1 / math.Sqrt(ss/float64(d)+1e-5)
		best, second := -1, math.Inf(-1)
		bestLogit := math.Inf(-1)
		for b := range v.tokens {
			var l float64
			for i := range d {
				l += float64(out[b*d+i]) * float64(x[i]) * inv
			}
			if l > bestLogit {
				second, bestLogit, best = bestLogit, l, b
			} else if l > second {
				second = l
			}
		}
		if v.tokens[best] != prefs[0] {
			t.Errorf("after %q the model prefers %q, want %q", state, v.tokens[best], prefs[0])
		}
		if bestLogit-second < step/2 {
			t.Errorf("after %q the margin is only %.1f", state, bestLogit-second)
		}
	}
}

func TestWriteDeterministic(t *testing.T) {
	var a, b, c bytes.Buffer
	if err := Write(&a, Options{Seed: 7}); err != nil {
		t.Fatal(err)
	}
	if err := Write(&b, Options{Seed: 7}); err != nil {
		t.Fatal(err)
	}
	if err := Write(&c, Options{Seed: 8}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) || bytes.Equal(a.Bytes(), c.Bytes()) {
		t.Error("the same seed must give the same file, another seed another")
	}
	if string(a.Bytes()[:4]) != "GGUF" || binary.LittleEndian.Uint32(a.Bytes()[4:8]) != 3 {
		t.Errorf("header % x", a.Bytes()[:8])
	}
	if a.Len()%Alignment != 0 {
		t.Errorf("size %d not a multiple of %d", a.Len(), Alignment)
	}
}

func TestOptionsRejected(t *testing.T) {
	for _, o := range []Options{
		{Dim: 63},
		{Dim: 24, Heads: 4}, // too narrow for the bigram states
		{Layers: -1},
		{Dim: 1 << 20},
		{Word: "aa"},
		{Word: "a b"},
		{Word: "ünï"},
		{ToolCall: "has blank"},
	} {
		if err := Write(&bytes.Buffer{}, o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}
