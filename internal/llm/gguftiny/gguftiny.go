// Package gguftiny writes a tiny language model in the GGUF v3 file format
// that Ollama (through llama.cpp) loads and runs, so that loupe's providers
// can be tested against a real Ollama server without downloading weights.
//
// The model is a Llama-architecture transformer (by default one layer,
// width 64, F32 weights, 350 KiB; a SentencePiece-style vocabulary of 359
// tokens: the control tokens of Template, the 256 byte tokens, the
// printable ASCII characters and the tool-call token below) whose
// layer weights are random and small. Its embedding and output matrices are
// built so that the model behaves as a bigram table for the handful of
// tokens that JSON is made of: after a quote it prefers the letters of
// Options.Word and then a closing quote, after a value it prefers to close
// the array or object, and after the end of the outermost object it prefers
// end-of-sequence. Under a grammar built from a JSON schema (Ollama's
// format, the OpenAI response_format) the output therefore follows the
// schema and stays short however the schema's strings are bounded.
//
// Ollama does not constrain tool calls with a grammar, so the model answers
// a prompt that ends with the assistant tag by emitting one fixed token,
// Options.ToolCall, a complete tool call in the form Template declares,
// followed by end-of-sequence. The Anthropic-compatible endpoint turns it
// into a tool_use block.
package gguftiny

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strings"
)

// Template is an Ollama chat template for the model: one control token per
// role, tools listed by name, tool calls written between <tool_call> tags.
// Ollama derives the tool-call tag from it and sees that the model takes
// tools.
const Template = `{{- if .Tools }}<|system|>tools:{{ range .Tools }} {{ .Function.Name }}{{ end }}
{{ end }}
{{- range .Messages }}
{{- if eq .Role "system" }}<|system|>{{ .Content }}
{{ else if eq .Role "user" }}<|user|>{{ .Content }}
{{ else if eq .Role "assistant" }}<|assistant|>{{ .Content }}
{{- if .ToolCalls }}<tool_call>{{ range .ToolCalls }}{"name":"{{ .Function.Name }}","arguments":{{ .Function.Arguments }}}{{ end }}</tool_call>{{ end }}
{{ else if eq .Role "tool" }}<|tool|>{{ .Content }}
{{ end }}
{{- end }}<|assistant|>`

// Options shape the model. The zero value of a field means its default.
type Options struct {
	Seed    uint64 // random layer weights; 0: 1
	Layers  int    // transformer blocks; 0: 1
	Dim     int    // embedding width, a multiple of Heads; 0: 64
	Heads   int    // attention heads; 0: 4
	FFN     int    // feed-forward width; 0: 2*Dim
	Context int    // context length in tokens; 0: 8192
	// Word is what the model writes inside a JSON string: ASCII letters and
	// digits, no character twice. "": DefaultWord.
	Word string
	// ToolCall is the text of the token the model emits after the
	// assistant tag when nothing constrains it. "": DefaultToolCall.
	ToolCall string
}

// DefaultWord is the model's preferred string content.
const DefaultWord = "T1059"

// DefaultToolName is the tool that DefaultToolCall calls.
const DefaultToolName = "triage"

// DefaultToolCall is a call of DefaultToolName whose arguments follow
// ToolSchema.
const DefaultToolCall = `<tool_call>{"name":"triage","arguments":{"verdict":"suspicious","severity":"medium","reason":"T1059"}}</tool_call>`

// ToolSchema is the JSON Schema of the arguments of DefaultToolCall.
func ToolSchema() map[string]any {
	return map[string]any{
		"type": "object",
		"properties": map[string]any{
			"verdict":  map[string]any{"type": "string", "enum": []any{"benign", "suspicious", "malicious"}},
			"severity": map[string]any{"type": "string", "enum": []any{"info", "low", "medium", "high", "critical"}},
			"reason":   map[string]any{"type": "string", "maxLength": 40},
		},
		"required":             []any{"verdict", "severity", "reason"},
		"additionalProperties": false,
	}
}

func (o Options) withDefaults() (Options, error) {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	def(&o.Layers, 1)
	def(&o.Dim, 64)
	def(&o.Heads, 4)
	def(&o.FFN, 2*o.Dim)
	def(&o.Context, 8192)
	if o.Word == "" {
		o.Word = DefaultWord
	}
	if o.ToolCall == "" {
		o.ToolCall = DefaultToolCall
	}
	switch {
	case o.Layers < 0 || o.Dim < 0 || o.Heads < 0 || o.FFN < 0 || o.Context < 0:
		return o, errors.New("gguftiny: sizes must not be negative")
	case o.Dim%o.Heads != 0 || (o.Dim/o.Heads)%2 != 0:
		return o, fmt.Errorf("gguftiny: width %d is not a multiple of 2×%d heads", o.Dim, o.Heads)
	case o.Layers > 64 || o.Dim > 4096 || o.FFN > 16384 || o.Context > 1<<20:
		return o, errors.New("gguftiny: sizes too large for a tiny model")
	}
	seen := map[rune]bool{}
	for _, r := range o.Word {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return o, fmt.Errorf("gguftiny: word %q: only ASCII letters and digits", o.Word)
		}
		if seen[r] {
			return o, fmt.Errorf("gguftiny: word %q repeats %q", o.Word, r)
		}
		seen[r] = true
	}
	if len(o.Word) > 32 {
		return o, errors.New("gguftiny: word longer than 32")
	}
	if strings.ContainsAny(o.ToolCall, " \n\t") || len(o.ToolCall) > 1024 {
		return o, errors.New("gguftiny: tool call must be at most 1024 characters without blanks")
	}
	return o, nil
}

// Token types of llama.cpp's vocabulary.
const (
	typeNormal  = 1
	typeUnknown = 2
	typeControl = 3
	typeByte    = 6
)

type vocab struct {
	tokens []string
	types  []int32
	id     map[string]int
}

func (v *vocab) add(s string, typ int32) {
	v.id[s] = len(v.tokens)
	v.tokens = append(v.tokens, s)
	v.types = append(v.types, typ)
}

// Special token ids.
const (
	unkID = 0
	bosID = 1
	eosID = 2
)

// sp is SentencePiece's word-boundary mark, which stands for a space.
const sp = "\u2581"

func newVocab(toolCall string) *vocab {
	v := &vocab{id: map[string]int{}}
	v.add("<unk>", typeUnknown)
	v.add("<s>", typeControl)
	v.add("</s>", typeControl)
	for _, role := range []string{"system", "user", "assistant", "tool"} {
		v.add("<|"+role+"|>", typeControl)
	}
	for b := 0; b < 256; b++ {
		v.add(fmt.Sprintf("<0x%02X>", b), typeByte)
	}
	v.add(sp, typeNormal)
	for c := byte('!'); c <= '~'; c++ {
		v.add(string(c), typeNormal)
	}
	v.add(toolCall, typeNormal)
	return v
}

// next is the bigram table: for a token, the tokens the model prefers next,
// best first.
func next(o Options) map[string][]string {
	closers := []string{"]", "}", ",", ":", "</s>"}
	row := func(first ...string) []string { return append(first, closers...) }
	t := map[string][]string{
		"<|assistant|>": {o.ToolCall, "{"},
		">":             {o.ToolCall, "{"}, // when the tag is not read as one token
		o.ToolCall:      {"</s>"},
		"{":             {`"`, "}"},
		`"`:             row(o.Word[:1]),
		":":             {`"`, "[", "{"},
		",":             {`"`, "{"},
		"[":             {`"`, "{", "]"},
		"]":             row(),
		"}":             {"</s>", "}", ",", "]"},
		sp:              row(`"`),
		"<0x0A>":        row(`"`),
		"<0x09>":        row(`"`),
	}
	for d := '0'; d <= '9'; d++ {
		t[string(d)] = row()
	}
	for i := 0; i < len(o.Word); i++ {
		after := `"`
		if i+1 < len(o.Word) {
			after = o.Word[i+1 : i+2]
		}
		t[o.Word[i:i+1]] = row(after)
	}
	return t
}

// Logit scale: the k-th preferred next token gets top-step*k, blanks get
// blank; everything else is noise of standard deviation 1.
const (
	top   = 200
	step  = 20
	blank = -100
)

// tensor is one named F32 tensor; shape lists dimensions innermost first
// as GGUF does (a matrix of rows of n floats has shape [n, rows]).
type tensor struct {
	name  string
	shape []uint64
	data  []float32
}

func build(o Options, v *vocab) ([]tensor, error) {
	rng := rand.New(rand.NewPCG(o.Seed, 0x6c6f757065))
	n := len(v.tokens)
	table := next(o)
	// Each token with a bigram row owns one embedding dimension.
	states := make([]string, 0, len(table))
	for _, s := range v.tokens { // vocabulary order: deterministic
		if _, ok := table[s]; ok {
			states = append(states, s)
		}
	}
	if len(states)+8 > o.Dim {
		return nil, fmt.Errorf("gguftiny: width %d too small for %d bigram states", o.Dim, len(states))
	}
	dimOf := map[string]int{}
	for i, s := range states {
		dimOf[s] = i
	}
	free := o.Dim - len(states) // dimensions of the other tokens
	embd := make([]float32, n*o.Dim)
	for id, s := range v.tokens {
		row := embd[id*o.Dim : (id+1)*o.Dim]
		if d, ok := dimOf[s]; ok {
			row[d] = 1
			continue
		}
		for d := len(states); d < o.Dim; d++ {
			row[d] = float32(rng.NormFloat64())
		}
	}
	// The final RMS norm scales a one-hot state to sqrt(Dim) in its
	// dimension, so an output weight w there becomes the logit w*sqrt(Dim).
	scale := float32(1 / math.Sqrt(float64(o.Dim)))
	out := make([]float32, n*o.Dim)
	for b := 0; b < n; b++ {
		row := out[b*o.Dim : (b+1)*o.Dim]
		for d := range len(states) {
			row[d] = float32(rng.NormFloat64()) * scale
		}
		for d := len(states); d < o.Dim; d++ {
			row[d] = float32(rng.NormFloat64()) / float32(math.Sqrt(float64(free)))
		}
	}
	for _, s := range states {
		d := dimOf[s]
		for _, w := range []string{sp, "<0x0A>", "<0x09>", "<0x0D>"} {
			out[v.id[w]*o.Dim+d] = blank * scale
		}
		for k, w := range table[s] {
			id, ok := v.id[w]
			if !ok {
				return nil, fmt.Errorf("gguftiny: bigram target %q is not in the vocabulary", w)
			}
			out[id*o.Dim+d] = float32(top-step*k) * scale
		}
	}

	ones := func(k int) []float32 {
		x := make([]float32, k)
		for i := range x {
			x[i] = 1
		}
		return x
	}
	randn := func(k int, std float64) []float32 {
		x := make([]float32, k)
		for i := range x {
			x[i] = float32(rng.NormFloat64() * std)
		}
		return x
	}
	dim, ffn := uint64(o.Dim), uint64(o.FFN)
	ts := []tensor{
		{"token_embd.weight", []uint64{dim, uint64(n)}, embd},
		{"output_norm.weight", []uint64{dim}, ones(o.Dim)},
		{"output.weight", []uint64{dim, uint64(n)}, out},
	}
	// Layer weights are random; the two that write into the residual
	// stream are small so that the layers compute without drowning the
	// bigram signal.
	for l := range o.Layers {
		p := fmt.Sprintf("blk.%d.", l)
		ts = append(ts,
			tensor{p + "attn_norm.weight", []uint64{dim}, ones(o.Dim)},
			tensor{p + "attn_q.weight", []uint64{dim, dim}, randn(o.Dim*o.Dim, 0.02)},
			tensor{p + "attn_k.weight", []uint64{dim, dim}, randn(o.Dim*o.Dim, 0.02)},
			tensor{p + "attn_v.weight", []uint64{dim, dim}, randn(o.Dim*o.Dim, 0.02)},
			tensor{p + "attn_output.weight", []uint64{dim, dim}, randn(o.Dim*o.Dim, 0.002)},
			tensor{p + "ffn_norm.weight", []uint64{dim}, ones(o.Dim)},
			tensor{p + "ffn_gate.weight", []uint64{dim, ffn}, randn(o.Dim*o.FFN, 0.02)},
			tensor{p + "ffn_up.weight", []uint64{dim, ffn}, randn(o.Dim*o.FFN, 0.02)},
			tensor{p + "ffn_down.weight", []uint64{ffn, dim}, randn(o.FFN*o.Dim, 0.002)},
		)
	}
	return ts, nil
}

// GGUF metadata value types.
const (
	ggufUint32  = 4
	ggufInt32   = 5
	ggufFloat32 = 6
	ggufBool    = 7
	ggufString  = 8
	ggufArray   = 9
)

// ggml tensor type F32.
const ggmlF32 = 0

// Alignment of the tensor data, GGUF's default.
const Alignment = 32

type kv struct {
	key string
	val any // uint32, float32, bool, string, []string, []float32, []int32
}

// Write writes the model to w.
func Write(w io.Writer, o Options) error {
	o, err := o.withDefaults()
	if err != nil {
		return err
	}
	v := newVocab(o.ToolCall)
	ts, err := build(o, v)
	if err != nil {
		return err
	}
	scores := make([]float32, len(v.tokens))
	for i := range scores {
		scores[i] = -float32(i) // unused: the vocabulary has no merges
	}
	u := func(n int) uint32 { return uint32(n) }
	meta := []kv{
		{"general.architecture", "llama"},
		{"general.name", "loupe-tiny"},
		{"general.file_type", uint32(0)}, // all F32
		{"general.alignment", uint32(Alignment)},
		{"llama.context_length", u(o.Context)},
		{"llama.embedding_length", u(o.Dim)},
		{"llama.block_count", u(o.Layers)},
		{"llama.feed_forward_length", u(o.FFN)},
		{"llama.attention.head_count", u(o.Heads)},
		{"llama.attention.head_count_kv", u(o.Heads)},
		{"llama.attention.layer_norm_rms_epsilon", float32(1e-5)},
		{"llama.rope.dimension_count", u(o.Dim / o.Heads)},
		{"llama.rope.freq_base", float32(10000)},
		{"llama.vocab_size", u(len(v.tokens))},
		{"tokenizer.ggml.model", "llama"},
		{"tokenizer.ggml.tokens", v.tokens},
		{"tokenizer.ggml.scores", scores},
		{"tokenizer.ggml.token_type", v.types},
		{"tokenizer.ggml.bos_token_id", uint32(bosID)},
		{"tokenizer.ggml.eos_token_id", uint32(eosID)},
		{"tokenizer.ggml.unknown_token_id", uint32(unkID)},
		{"tokenizer.ggml.add_bos_token", true},
		{"tokenizer.ggml.add_eos_token", false},
	}

	bw := bufio.NewWriter(w)
	e := &enc{w: bw}
	e.raw([]byte("GGUF"))
	e.u32(3)
	e.u64(uint64(len(ts)))
	e.u64(uint64(len(meta)))
	for _, m := range meta {
		e.str(m.key)
		e.value(m.val)
	}
	var off uint64
	for _, t := range ts {
		e.str(t.name)
		e.u32(uint32(len(t.shape)))
		for _, d := range t.shape {
			e.u64(d)
		}
		e.u32(ggmlF32)
		e.u64(off)
		off = align(off + uint64(4*len(t.data)))
	}
	e.pad()
	for _, t := range ts {
		for _, f := range t.data {
			e.u32(math.Float32bits(f))
		}
		e.pad()
	}
	if e.err != nil {
		return fmt.Errorf("gguftiny: %w", e.err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("gguftiny: %w", err)
	}
	return nil
}

func align(n uint64) uint64 { return (n + Alignment - 1) / Alignment * Alignment }

// enc writes little-endian GGUF values and remembers the first error.
type enc struct {
	w   io.Writer
	n   uint64
	err error
	buf [8]byte
}

func (e *enc) raw(b []byte) {
	if e.err != nil {
		return
	}
	var k int
	k, e.err = e.w.Write(b)
	e.n += uint64(k)
}

func (e *enc) u32(x uint32) { binary.LittleEndian.PutUint32(e.buf[:4], x); e.raw(e.buf[:4]) }
func (e *enc) u64(x uint64) { binary.LittleEndian.PutUint64(e.buf[:8], x); e.raw(e.buf[:8]) }
func (e *enc) str(s string) { e.u64(uint64(len(s))); e.raw([]byte(s)) }

func (e *enc) pad() {
	if r := e.n % Alignment; r != 0 {
		e.raw(make([]byte, Alignment-r))
	}
}

func (e *enc) value(v any) {
	switch x := v.(type) {
	case uint32:
		e.u32(ggufUint32)
		e.u32(x)
	case float32:
		e.u32(ggufFloat32)
		e.u32(math.Float32bits(x))
	case bool:
		e.u32(ggufBool)
		if x {
			e.raw([]byte{1})
		} else {
			e.raw([]byte{0})
		}
	case string:
		e.u32(ggufString)
		e.str(x)
	case []string:
		e.u32(ggufArray)
		e.u32(ggufString)
		e.u64(uint64(len(x)))
		for _, s := range x {
			e.str(s)
		}
	case []float32:
		e.u32(ggufArray)
		e.u32(ggufFloat32)
		e.u64(uint64(len(x)))
		for _, f := range x {
			e.u32(math.Float32bits(f))
		}
	case []int32:
		e.u32(ggufArray)
		e.u32(ggufInt32)
		e.u64(uint64(len(x)))
		for _, i := range x {
			e.u32(uint32(i))
		}
	default:
		if e.err == nil {
			e.err = fmt.Errorf("unsupported metadata value %T", v)
		}
	}
}

// Parameters are the Modelfile lines that make the model's sampling
// reproducible (greedy, no repetition penalty), give it a context as long
// as the model's, and run it on one thread: the model is too small to gain
// from more, and on a busy machine threads waiting for each other made
// each token take 100 ms instead of 0.1 ms.
const Parameters = `PARAMETER temperature 0
PARAMETER repeat_penalty 1
PARAMETER num_ctx 8192
PARAMETER num_thread 1
`
