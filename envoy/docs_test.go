package envoy

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// fileRef finds what reads as a path to a document, source or config file:
// `RATIONALE.md`, `plugins/jwt-auth/README.md`, or one that leads out of
// the repository with "../".
var fileRef = regexp.MustCompile(`(?:\.\./|\./)?[A-Za-z0-9_][A-Za-z0-9_./-]*\.(?:md|go|yaml|yml)\b`)

// TestDocumentReferencesResolve: every file a README, RATIONALE.md or Go
// comment names is in the repository. A reader of the repository has
// nothing else, so a reference to a document outside it (a design note, a
// file of another project) is a dead end. A name resolves against the
// referring file's folder, the repository root, or, for a bare file name
// ("main.go", "envoy.yaml"), any file of that name in the repository.
func TestDocumentReferencesResolve(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	basenames := map[string]bool{}
	var docs []string
	err = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "build", "node_modules":
				return filepath.SkipDir
			}
			return nil
		}
		basenames[d.Name()] = true
		if strings.HasSuffix(p, ".md") || strings.HasSuffix(p, ".go") {
			docs = append(docs, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range docs {
		rel, _ := filepath.Rel(root, doc)
		for lineNo, text := range referringLines(t, doc) {
			for _, ref := range fileRef.FindAllString(text, -1) {
				if resolves(root, filepath.Dir(doc), ref, basenames) {
					continue
				}
				t.Errorf("%s:%d names %q, which is not in the repository", rel, lineNo, ref)
			}
		}
	}
}

// referringLines returns the lines of a file that may name other files,
// keyed by line number: all of a Markdown file, only the comments of a Go
// file (code names files it makes or reads in tests, which need not exist).
func referringLines(t *testing.T, path string) map[int]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lines := map[int]string{}
	markdown := strings.HasSuffix(path, ".md")
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		text := sc.Text()
		if !markdown {
			i := strings.Index(text, "//")
			if i < 0 {
				continue
			}
			text = text[i+2:]
		}
		// Addresses name files of other projects; their own page is the reference.
		if strings.Contains(text, "://") {
			continue
		}
		lines[n] = text
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

func resolves(root, dir, ref string, basenames map[string]bool) bool {
	for _, base := range []string{dir, root} {
		p := filepath.Join(base, ref)
		if !strings.HasPrefix(p, root+string(filepath.Separator)) {
			continue // outside the repository, where its reader has nothing
		}
		if _, err := os.Stat(p); err == nil {
			return true
		}
	}
	if !strings.Contains(ref, "/") {
		return basenames[ref]
	}
	return false
}

func TestDocumentReferencesCatchDeadEnds(t *testing.T) {
	root, _ := filepath.Abs("..")
	basenames := map[string]bool{"README.md": true}
	for _, ref := range []string{"../shared/NOTES.md", "NOTES.md", "plugins/nope/README.md"} {
		if resolves(root, root, ref, basenames) {
			t.Errorf("resolves(%q) = true, want false", ref)
		}
	}
	for _, ref := range []string{"RATIONALE.md", "plugins/jwt-auth/README.md", "README.md"} {
		if !resolves(root, root, ref, basenames) {
			t.Errorf("resolves(%q) = false, want true", ref)
		}
	}
}
