// Package build turns a plugin folder into a .wasm file with the standard Go
// toolchain, caching the result by the content of everything that can change
// it, so `go test ./...` needs no `make` and rebuilds only what changed.
package build

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
)

// Command is the exact build command, shown to users when a build fails.
const Command = "GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -o OUT.wasm ./DIR"

// Builder builds plugin folders into a cache directory. The zero value is
// not usable; use New.
type Builder struct {
	cacheDir string
	mu       sync.Mutex
	inflight map[string]*result
}

type result struct {
	once sync.Once
	path string
	err  error
}

// New returns a Builder caching into dir (created if missing).
func New(dir string) *Builder {
	return &Builder{cacheDir: dir, inflight: map[string]*result{}}
}

// DefaultCacheDir is where built modules are kept between test runs: under
// the user cache dir, never inside the source tree.
func DefaultCacheDir() string {
	if d := os.Getenv("CONCIERGE_WASM_CACHE"); d != "" {
		return d
	}
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	return filepath.Join(base, "concierge-hosttest", "wasm")
}

// Build returns the path of the .wasm built from the Go package in dir.
func (b *Builder) Build(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	key, err := contentKey(abs)
	if err != nil {
		return "", fmt.Errorf("build %s: %w", dir, err)
	}
	b.mu.Lock()
	r, ok := b.inflight[key]
	if !ok {
		r = &result{}
		b.inflight[key] = r
	}
	b.mu.Unlock()
	r.once.Do(func() { r.path, r.err = b.build(abs, key) })
	return r.path, r.err
}

func (b *Builder) build(dir, key string) (string, error) {
	out := filepath.Join(b.cacheDir, filepath.Base(dir)+"-"+key[:24]+".wasm")
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	if err := os.MkdirAll(b.cacheDir, 0o755); err != nil {
		return "", err
	}
	// Build to a temporary name and rename: parallel test binaries may build
	// the same plugin at once, and a reader must never see half a file.
	tmp, err := os.CreateTemp(b.cacheDir, ".build-*.wasm")
	if err != nil {
		return "", err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-trimpath", "-o", tmp.Name(), ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building %s failed (%v); reproduce with:\n  cd %s && %s\n%s",
			dir, err, dir, strings.Replace(Command, "./DIR", ".", 1), stderr.String())
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return "", err
	}
	return out, nil
}

// contentKey hashes the Go toolchain version, the module's go.mod/go.sum and
// every non-test .go file of the module the plugin lives in. Hashing the
// whole module is coarse (any change rebuilds every plugin) but cheap, and it
// can never miss a change in a shared package the plugin imports.
func contentKey(dir string) (string, error) {
	root := moduleRoot(dir)
	h := sha256.New()
	io.WriteString(h, runtime.Version()+"\x00"+dir+"\x00")
	var files []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if p != root && (strings.HasPrefix(name, ".") || name == "build" || name == "node_modules") {
				return filepath.SkipDir
			}
			// A nested module is not part of this one.
			if p != root {
				if _, err := os.Stat(filepath.Join(p, "go.mod")); err == nil && !isWithin(dir, p) {
					return filepath.SkipDir
				}
			}
			return nil
		}
		if (strings.HasSuffix(name, ".go") && !strings.HasSuffix(name, "_test.go")) || name == "go.mod" || name == "go.sum" {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	sort.Strings(files)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		rel, _ := filepath.Rel(root, f)
		fmt.Fprintf(h, "%s\x00%d\x00", rel, len(data))
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func isWithin(dir, parent string) bool {
	rel, err := filepath.Rel(parent, dir)
	return err == nil && !strings.HasPrefix(rel, "..")
}

func moduleRoot(dir string) string {
	for d := dir; ; {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		parent := filepath.Dir(d)
		if parent == d {
			return dir
		}
		d = parent
	}
}
