// Command ocipack packages proxy-wasm modules as OCI image layouts that
// Istio's WasmPlugin image fetcher accepts for oci:// URLs, without a
// container engine:
//
//	go run ./hosttest/cmd/ocipack -out build/oci -tag dev build/request-id.wasm build/jwt-auth.wasm
//
// writes build/oci/request-id/ and build/oci/jwt-auth/, each an OCI image
// layout (oci-layout, index.json, blobs/sha256/…) holding one image whose
// index entry is annotated org.opencontainers.image.ref.name=<tag>. Push one
// with any OCI tool, e.g. `crane push build/oci/jwt-auth REGISTRY/jwt-auth:TAG`
// or `skopeo copy oci:build/oci/jwt-auth:TAG docker://REGISTRY/jwt-auth:TAG`.
//
// Two layouts are possible (-variant), both read by Istio's
// image fetcher (package pkg/wasm of istio/istio):
//
//   - compat (default): an OCI image with exactly one
//     application/vnd.oci.image.layer.v1.tar+gzip layer holding plugin.wasm,
//     and the manifest annotation module.wasm.image/variant=compat. Istio
//     tries this form first for OCI manifests; any registry and tool that
//     handles container images handles it.
//   - oci: the Wasm artifact image: exactly two layers, the runtime config
//     (application/vnd.module.wasm.config.v1+json) and the raw module
//     (application/vnd.module.wasm.content.layer.v1+wasm). Istio's fetcher
//     rejects this variant with any other number of layers ("number of
//     layers must be 2"), so an image whose config blob carries the wasm
//     config media type beside a single module layer does not load.
//
// Images are reproducible: the same module gives the same digests.
package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Media types and names of the Wasm image specification
// (github.com/solo-io/wasm/tree/master/spec) as Istio reads them.
const (
	WasmConfigMediaType  types.MediaType = "application/vnd.module.wasm.config.v1+json"
	WasmContentMediaType types.MediaType = "application/vnd.module.wasm.content.layer.v1+wasm"
	CompatFileName                       = "plugin.wasm"
	VariantAnnotation                    = "module.wasm.image/variant"
	RefNameAnnotation                    = "org.opencontainers.image.ref.name"
	TitleAnnotation                      = "org.opencontainers.image.title"
)

// Variant selects the image layout.
type Variant string

const (
	Compat Variant = "compat"
	OCI    Variant = "oci"
)

// runtimeConfig is the content of the oci variant's config layer.
type runtimeConfig struct {
	Type        string   `json:"type"`
	ABIVersions []string `json:"abiVersions"`
	Config      struct {
		RootIDs []string `json:"root_ids"`
	} `json:"config"`
}

// Image builds the image of one module. name is the module's name
// (request-id), used for its root_id and titles.
func Image(name string, wasm []byte, v Variant) (v1.Image, error) {
	if len(wasm) < 8 || string(wasm[:4]) != "\x00asm" {
		return nil, fmt.Errorf("%s: not a WebAssembly module (no \\0asm header)", name)
	}
	var img v1.Image
	var err error
	switch v {
	case Compat:
		var l v1.Layer
		if l, err = compatLayer(wasm); err != nil {
			return nil, err
		}
		img, err = mutate.Append(empty.Image, mutate.Addendum{Layer: l, MediaType: types.OCILayer})
	case OCI:
		rc := runtimeConfig{Type: "envoy_proxy", ABIVersions: []string{"v0.2.1"}}
		rc.Config.RootIDs = []string{name}
		var cfg []byte
		if cfg, err = json.Marshal(rc); err != nil {
			return nil, err
		}
		img, err = mutate.Append(empty.Image,
			mutate.Addendum{Layer: static.NewLayer(cfg, WasmConfigMediaType), Annotations: map[string]string{TitleAnnotation: "runtime-config.json"}},
			mutate.Addendum{Layer: static.NewLayer(wasm, WasmContentMediaType), Annotations: map[string]string{TitleAnnotation: name + ".wasm"}})
	default:
		return nil, fmt.Errorf("unknown variant %q (want compat or oci)", v)
	}
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS = "wasm", "wasip1"
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return nil, err
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	anns := map[string]string{TitleAnnotation: name}
	if v == Compat {
		anns[VariantAnnotation] = string(Compat)
	}
	return mutate.Annotations(img, anns).(v1.Image), nil
}

// compatLayer is a tar+gzip layer holding one file, plugin.wasm, with
// fixed metadata so that the same module gives the same digest.
func compatLayer(wasm []byte) (v1.Layer, error) {
	var b bytes.Buffer
	w := tar.NewWriter(&b)
	if err := w.WriteHeader(&tar.Header{Name: CompatFileName, Mode: 0o444, Size: int64(len(wasm)), Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
		return nil, err
	}
	if _, err := w.Write(wasm); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	raw := b.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(raw)), nil
	}, tarball.WithMediaType(types.OCILayer))
}

// WriteLayout writes img as a fresh OCI image layout at dir, tagged tag.
func WriteLayout(dir, tag string, img v1.Image) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	return p.AppendImage(img, layout.WithAnnotations(map[string]string{RefNameAnnotation: tag}))
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("ocipack", flag.ContinueOnError)
	out := fs.String("out", "build/oci", "directory that receives one OCI image layout per module")
	tag := fs.String("tag", "dev", "tag recorded in each layout's index (org.opencontainers.image.ref.name)")
	variant := fs.String("variant", string(Compat), "image layout: compat (plugin.wasm in a tar+gzip layer) or oci (Wasm artifact layers)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return errors.New("usage: ocipack [-out DIR] [-tag TAG] [-variant compat|oci] MODULE.wasm...")
	}
	for _, path := range fs.Args() {
		wasm, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("%w (build the modules first: make build)", err)
		}
		name := strings.TrimSuffix(filepath.Base(path), ".wasm")
		img, err := Image(name, wasm, Variant(*variant))
		if err != nil {
			return err
		}
		dir := filepath.Join(*out, name)
		if err := WriteLayout(dir, *tag, img); err != nil {
			return fmt.Errorf("%s: %w", dir, err)
		}
		d, err := img.Digest()
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: %s variant, %d bytes of wasm, manifest %s, tag %s\n", dir, *variant, len(wasm), d, *tag)
	}
	return nil
}

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "ocipack:", err)
		os.Exit(1)
	}
}
