package build

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestBuildCachesByContentAndPrunesOldBuilds(t *testing.T) {
	cache := t.TempDir()
	b := New(cache)
	stale := filepath.Join(cache, "noop-000000000000000000000000.wasm")
	if err := os.WriteFile(stale, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * time.Hour)
	os.Chtimes(stale, old, old)

	path, err := b.Build("../../testdata/noop")
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil || len(data) < 8 || string(data[:4]) != "\x00asm" {
		t.Fatalf("Build wrote %d bytes (%v), want a wasm module", len(data), err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("an old build of the same plugin was kept: %v", err)
	}
	again, err := New(cache).Build("../../testdata/noop")
	if err != nil || again != path {
		t.Errorf("second Build = %q, %v; want the cached %q", again, err, path)
	}
}

func TestBuildFailureNamesTheCommand(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module broken\n\ngo 1.26\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\nfunc main() { undefined() }\n"), 0o644)
	_, err := New(t.TempDir()).Build(dir)
	if err == nil {
		t.Fatal("a broken plugin built")
	}
	for _, want := range []string{"GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared", "undefined"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}
