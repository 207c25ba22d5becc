package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/concierge-wasm/concierge/hosttest"
)

// module builds a real proxy-wasm module (the no-op test plugin).
func module(t testing.TB) []byte {
	t.Helper()
	p, err := hosttest.Build(filepath.Join("..", "..", "testdata", "noop"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readLayout reads back the one image of an OCI image layout and checks
// its tag.
func readLayout(t testing.TB, dir, tag string) v1.Image {
	t.Helper()
	ii, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatalf("layout.ImageIndexFromPath(%s) = %v", dir, err)
	}
	im, err := ii.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 {
		t.Fatalf("%s: %d manifests in index.json, want 1", dir, len(im.Manifests))
	}
	d := im.Manifests[0]
	if got := d.Annotations[RefNameAnnotation]; got != tag {
		t.Errorf("%s: ref.name = %q, want %q", dir, got, tag)
	}
	if d.MediaType != types.OCIManifestSchema1 {
		t.Errorf("%s: manifest media type %s, want %s", dir, d.MediaType, types.OCIManifestSchema1)
	}
	img, err := ii.Image(d.Digest)
	if err != nil {
		t.Fatal(err)
	}
	// Every blob the manifest names is on disk under its digest, with the
	// size the descriptor gives.
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, desc := range append([]v1.Descriptor{d, m.Config}, m.Layers...) {
		b, err := os.ReadFile(filepath.Join(dir, "blobs", desc.Digest.Algorithm, desc.Digest.Hex))
		if err != nil {
			t.Fatalf("%s: blob of %s: %v", dir, desc.MediaType, err)
		}
		sum := sha256.Sum256(b)
		if hex.EncodeToString(sum[:]) != desc.Digest.Hex || int64(len(b)) != desc.Size {
			t.Errorf("%s: blob %s (%s): sha256 %x, %d bytes; descriptor says %s, %d bytes", dir, desc.Digest, desc.MediaType, sum, len(b), desc.Digest.Hex, desc.Size)
		}
	}
	return img
}

// fetchLikeIstio extracts the module the way Istio's WasmPlugin image
// fetcher does (package pkg/wasm of istio/istio): a Docker manifest
// must have one Docker tar+gzip layer holding plugin.wasm; an OCI manifest
// is tried as the compat variant (exactly one OCI tar+gzip layer with
// plugin.wasm), then as the oci variant (exactly two layers, one of them
// the raw module). It returns the variant it recognised.
func fetchLikeIstio(img v1.Image) ([]byte, Variant, error) {
	m, err := img.Manifest()
	if err != nil {
		return nil, "", err
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, "", err
	}
	fromTarGz := func(want types.MediaType) ([]byte, error) {
		if len(layers) != 1 {
			return nil, fmt.Errorf("number of layers must be 1 but got %d", len(layers))
		}
		mt, err := layers[0].MediaType()
		if err != nil {
			return nil, err
		}
		if mt != want {
			return nil, fmt.Errorf("invalid media type %s (expect %s)", mt, want)
		}
		rc, err := layers[0].Compressed()
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		gz, err := gzip.NewReader(rc)
		if err != nil {
			return nil, err
		}
		tr := tar.NewReader(gz)
		for {
			h, err := tr.Next()
			if err != nil {
				return nil, fmt.Errorf("plugin.wasm not found in the archive: %w", err)
			}
			if path.Base(h.Name) == CompatFileName {
				return io.ReadAll(tr)
			}
		}
	}
	if m.MediaType == types.DockerManifestSchema2 {
		b, err := fromTarGz(types.DockerLayer)
		return b, Compat, err
	}
	b, errCompat := fromTarGz(types.OCILayer)
	if errCompat == nil {
		return b, Compat, nil
	}
	if len(layers) != 2 {
		return nil, "", fmt.Errorf("compat: %v; oci: number of layers must be 2 but got %d", errCompat, len(layers))
	}
	for _, l := range layers {
		if mt, _ := l.MediaType(); mt == WasmContentMediaType {
			rc, err := l.Compressed()
			if err != nil {
				return nil, "", err
			}
			defer rc.Close()
			b, err := io.ReadAll(rc)
			return b, OCI, err
		}
	}
	return nil, "", errors.Join(errCompat, fmt.Errorf("could not find the layer of type %s", WasmContentMediaType))
}

func TestLayoutHoldsModuleByteForByte(t *testing.T) {
	wasm := module(t)
	for _, v := range []Variant{Compat, OCI} {
		t.Run(string(v), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "noop")
			img, err := Image("noop", wasm, v)
			if err != nil {
				t.Fatal(err)
			}
			if err := WriteLayout(dir, "v1.2.3", img); err != nil {
				t.Fatal(err)
			}
			back := readLayout(t, dir, "v1.2.3")
			got, variant, err := fetchLikeIstio(back)
			if err != nil {
				t.Fatalf("fetchLikeIstio = %v", err)
			}
			if variant != v {
				t.Errorf("Istio reads it as the %s variant, want %s", variant, v)
			}
			if !bytes.Equal(got, wasm) {
				t.Fatalf("module read back: %d bytes, differs from the %d-byte module", len(got), len(wasm))
			}
			m, err := back.Manifest()
			if err != nil {
				t.Fatal(err)
			}
			if v == Compat && m.Annotations[VariantAnnotation] != "compat" {
				t.Errorf("manifest annotations %v: the compat variant with OCI layers must carry %s=compat", m.Annotations, VariantAnnotation)
			}
			cf, err := back.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if cf.Architecture != "wasm" || cf.OS != "wasip1" {
				t.Errorf("config platform %s/%s, want wasip1/wasm", cf.OS, cf.Architecture)
			}
		})
	}
}

func TestReproducible(t *testing.T) {
	wasm := module(t)
	var digests []v1.Hash
	for range 2 {
		img, err := Image("noop", wasm, Compat)
		if err != nil {
			t.Fatal(err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, d)
	}
	if digests[0] != digests[1] {
		t.Errorf("two builds of one module: digests %s and %s, want equal", digests[0], digests[1])
	}
}

func TestRunWritesOneLayoutPerModule(t *testing.T) {
	wasm := module(t)
	in := t.TempDir()
	for _, name := range []string{"alpha", "beta"} {
		if err := os.WriteFile(filepath.Join(in, name+".wasm"), wasm, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := t.TempDir()
	var stdout bytes.Buffer
	if err := run([]string{"-out", out, "-tag", "t1", filepath.Join(in, "alpha.wasm"), filepath.Join(in, "beta.wasm")}, &stdout); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"alpha", "beta"} {
		got, _, err := fetchLikeIstio(readLayout(t, filepath.Join(out, name), "t1"))
		if err != nil || !bytes.Equal(got, wasm) {
			t.Errorf("%s: module read back differs (err %v)", name, err)
		}
	}
	if n := strings.Count(stdout.String(), "\n"); n != 2 {
		t.Errorf("run printed %d lines, want one per module:\n%s", n, stdout.String())
	}
}

func TestRefusesWhatIsNotWasm(t *testing.T) {
	if _, err := Image("x", []byte("#!/bin/sh\necho hi\n"), Compat); err == nil || !strings.Contains(err.Error(), "not a WebAssembly module") {
		t.Errorf("Image(shell script) error = %v, want not a WebAssembly module", err)
	}
	dir := t.TempDir()
	if err := run([]string{"-out", dir, filepath.Join(dir, "missing.wasm")}, io.Discard); err == nil || !strings.Contains(err.Error(), "make build") {
		t.Errorf("run(missing file) error = %v, want the hint to run make build", err)
	}
	if err := run([]string{"-variant", "zip", filepath.Join(dir, "x.wasm")}, io.Discard); err == nil {
		t.Error("run(-variant zip) succeeded, want an error")
	}
}
