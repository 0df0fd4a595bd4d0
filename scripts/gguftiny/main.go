// Command gguftiny writes loupe's tiny test model (see internal/llm/gguftiny)
// and an Ollama Modelfile for it into a directory:
//
//	go run ./scripts/gguftiny -dir /tmp/model
//	ollama create loupe-tiny -f /tmp/model/Modelfile
//
// The Modelfile sets the chat template and greedy, penalty-free sampling,
// so the model's answers are reproducible.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/loupe-sec/loupe/internal/llm/gguftiny"
)

func main() {
	dir := flag.String("dir", "", "directory to write tiny.gguf and Modelfile into (created if missing)")
	seed := flag.Uint64("seed", 1, "seed of the random layer weights")
	flag.Parse()
	if *dir == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: gguftiny -dir DIR [-seed N]")
		os.Exit(2)
	}
	if err := run(*dir, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "gguftiny:", err)
		os.Exit(1)
	}
}

func run(dir string, seed uint64) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var model bytes.Buffer
	if err := gguftiny.Write(&model, gguftiny.Options{Seed: seed}); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "tiny.gguf"), model.Bytes(), 0o644); err != nil {
		return err
	}
	modelfile := fmt.Sprintf("FROM ./tiny.gguf\nTEMPLATE \"\"\"%s\"\"\"\n%s", gguftiny.Template, gguftiny.Parameters)
	return os.WriteFile(filepath.Join(dir, "Modelfile"), []byte(modelfile), 0o644)
}
