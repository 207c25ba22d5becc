// Package build turns a plugin folder into a .wasm file with the standard Go
// toolchain, caching the result by the content of everything that can change
// it, so `go test ./...` needs no `make` and rebuilds only what changed.
package build

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
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
	"time"
)

// Command is the exact build command, shown to users when a build fails.
const Command = "GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -o OUT.wasm ./DIR"

// Builder builds plugin folders into a cache directory. The zero value is
// not usable; use New.
type Builder struct {
	cacheDir string
	mu       sync.Mutex
	inflight map[string]*result
	keys     map[string]string
}

type result struct {
	once sync.Once
	path string
	err  error
}

// New returns a Builder caching into dir (created if missing).
func New(dir string) *Builder {
	return &Builder{cacheDir: dir, inflight: map[string]*result{}, keys: map[string]string{}}
}

// DefaultCacheDir is where built modules are kept between test runs: under
// the user cache dir, never inside the source tree.
func DefaultCacheDir() string {
	if d := os.Getenv("CONCIERGE_WASM_CACHE"); d != "" {
		return d
	}
	return filepath.Join(CacheRoot(), "wasm")
}

// CacheRoot holds everything hosttest keeps between runs (built modules
// and wazero's compiled code, about 100 MB): $CONCIERGE_HOSTTEST_CACHE, or
// concierge-hosttest under the user cache dir. Deleting it costs only time.
func CacheRoot() string {
	if d := os.Getenv("CONCIERGE_HOSTTEST_CACHE"); d != "" {
		return d
	}
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	return filepath.Join(base, "concierge-hosttest")
}

// Build returns the path of the .wasm built from the Go package in dir.
func (b *Builder) Build(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	// The key is computed once per directory per process: sources do not
	// change under a running test binary, and go list costs a few hundred ms.
	b.mu.Lock()
	key, ok := b.keys[abs]
	b.mu.Unlock()
	if !ok {
		var err error
		if key, err = contentKey(abs); err != nil {
			return "", fmt.Errorf("build %s: %w", dir, err)
		}
		b.mu.Lock()
		b.keys[abs] = key
		b.mu.Unlock()
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
	b.prune(filepath.Base(dir), out)
	return out, nil
}

// prune removes older builds of the same plugin, so the cache holds about
// one module per plugin instead of one per edit. Builds younger than an
// hour stay: another test binary of another revision may be using them.
func (b *Builder) prune(name, keep string) {
	old, _ := filepath.Glob(filepath.Join(b.cacheDir, name+"-*.wasm"))
	for _, f := range old {
		if f == keep {
			continue
		}
		if st, err := os.Stat(f); err == nil && time.Since(st.ModTime()) > time.Hour {
			os.Remove(f)
		}
	}
}

// contentKey hashes the Go toolchain version, go.mod/go.sum and the
// non-test .go files of every package of the plugin's module that the
// plugin imports (go list -deps), so editing one plugin does not rebuild
// the others. Dependencies outside the module are pinned by go.sum.
func contentKey(dir string) (string, error) {
	root := moduleRoot(dir)
	cmd := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.Dir}}{{end}}", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go list in %s: %v\n%s", dir, err, stderr.String())
	}
	h := sha256.New()
	io.WriteString(h, runtime.Version()+"\x00"+dir+"\x00")
	files := []string{filepath.Join(root, "go.mod"), filepath.Join(root, "go.sum")}
	for _, d := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if d == "" || !isWithin(d, root) {
			continue
		}
		entries, err := os.ReadDir(d)
		if err != nil {
			return "", err
		}
		for _, e := range entries {
			n := e.Name()
			if !e.IsDir() && strings.HasSuffix(n, ".go") && !strings.HasSuffix(n, "_test.go") {
				files = append(files, filepath.Join(d, n))
			}
		}
	}
	sort.Strings(files)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
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
