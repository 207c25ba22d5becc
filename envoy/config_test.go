package envoy

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	wasmhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	wasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	istioext "istio.io/api/extensions/v1alpha1"
	"sigs.k8s.io/yaml"

	"github.com/concierge-wasm/concierge/hosttest"

	// The typed_config types the shipped YAMLs use, registered so that
	// protojson resolves their Any. A YAML using a type not listed here
	// fails to parse: add the import with the YAML.
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/resource_monitors/fixed_heap/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
)

// doc is one YAML document of one file under envoy/.
type doc struct {
	file  string // relative to envoy/
	index int    // document index in a multi-document file
	json  []byte
	raw   map[string]any
}

func (d doc) String() string {
	if d.index == 0 {
		return d.file
	}
	return fmt.Sprintf("%s#%d", d.file, d.index)
}

// docs reads every YAML document under envoy/. It fails when there is none:
// the tests below must always have something to check.
func docs(t testing.TB) []doc {
	t.Helper()
	var out []doc
	err := filepath.WalkDir(".", func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || (path.Ext(p) != ".yaml" && path.Ext(p) != ".yml") {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for i, part := range splitDocuments(b) {
			if len(bytes.TrimSpace(stripComments(part))) == 0 {
				continue
			}
			j, err := yaml.YAMLToJSON(part)
			if err != nil {
				return fmt.Errorf("%s#%d: %w", p, i, err)
			}
			var raw map[string]any
			if err := yaml.Unmarshal(part, &raw); err != nil {
				return fmt.Errorf("%s#%d: %w", p, i, err)
			}
			out = append(out, doc{file: filepath.ToSlash(p), index: i, json: j, raw: raw})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatal("no YAML under envoy/")
	}
	return out
}

// splitDocuments splits a multi-document YAML stream at "---" lines.
func splitDocuments(b []byte) [][]byte {
	var out [][]byte
	var cur []byte
	for _, line := range bytes.SplitAfter(b, []byte("\n")) {
		if string(bytes.TrimRight(line, " \t\r\n")) == "---" {
			out = append(out, cur)
			cur = nil
			continue
		}
		cur = append(cur, line...)
	}
	return append(out, cur)
}

func stripComments(b []byte) []byte {
	var out []byte
	for _, line := range bytes.SplitAfter(b, []byte("\n")) {
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' {
			out = append(out, line...)
		}
	}
	return out
}

// isManifest tells a Kubernetes manifest (apiVersion/kind) from an Envoy
// bootstrap.
func (d doc) isManifest() bool { _, ok := d.raw["apiVersion"]; return ok }

// bootstrap parses an Envoy bootstrap strictly: unknown fields are errors.
func (d doc) bootstrap(t testing.TB) *bootstrapv3.Bootstrap {
	t.Helper()
	b := &bootstrapv3.Bootstrap{}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(d.json, b); err != nil {
		t.Fatalf("%s: not an Envoy v3 Bootstrap: %v", d, err)
	}
	return b
}

// wasmPlugin parses an Istio WasmPlugin manifest's spec strictly.
func (d doc) wasmPlugin(t testing.TB) (*istioext.WasmPlugin, string) {
	t.Helper()
	if d.raw["apiVersion"] != "extensions.istio.io/v1alpha1" || d.raw["kind"] != "WasmPlugin" {
		t.Fatalf("%s: apiVersion %v kind %v, want extensions.istio.io/v1alpha1 WasmPlugin (the only manifests kept here)", d, d.raw["apiVersion"], d.raw["kind"])
	}
	meta, _ := d.raw["metadata"].(map[string]any)
	name, _ := meta["name"].(string)
	if name == "" {
		t.Fatalf("%s: metadata.name is required", d)
	}
	for k := range d.raw {
		if k != "apiVersion" && k != "kind" && k != "metadata" && k != "spec" {
			t.Fatalf("%s: unknown top-level field %q", d, k)
		}
	}
	spec, err := yaml.Marshal(d.raw["spec"])
	if err != nil {
		t.Fatal(err)
	}
	j, err := yaml.YAMLToJSON(spec)
	if err != nil {
		t.Fatal(err)
	}
	p := &istioext.WasmPlugin{}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(j, p); err != nil {
		t.Fatalf("%s: spec is not an istio.extensions.v1alpha1.WasmPlugin: %v", d, err)
	}
	return p, name
}

// validateDeep runs the protoc-gen-validate rules of m and of every Any
// inside it, unpacked (ValidateAll alone stops at an Any).
func validateDeep(m proto.Message, at string) []error {
	var errs []error
	if v, ok := m.(interface{ ValidateAll() error }); ok {
		if err := v.ValidateAll(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", at, err))
		}
	}
	walkAnys(m.ProtoReflect(), at, func(a *anypb.Any, p string) {
		inner, err := a.UnmarshalNew()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %s: %w", p, a.GetTypeUrl(), err))
			return
		}
		errs = append(errs, validateDeep(inner, p+"<"+string(inner.ProtoReflect().Descriptor().FullName())+">")...)
	})
	return errs
}

// walkAnys calls fn for every Any reachable from m without crossing another
// Any.
func walkAnys(m protoreflect.Message, at string, fn func(*anypb.Any, string)) {
	visit := func(v protoreflect.Message, p string) {
		if a, ok := v.Interface().(*anypb.Any); ok {
			fn(a, p)
			return
		}
		walkAnys(v, p, fn)
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		p := at + "." + string(fd.Name())
		switch {
		case fd.IsList():
			if fd.Message() != nil {
				l := v.List()
				for i := 0; i < l.Len(); i++ {
					visit(l.Get(i).Message(), fmt.Sprintf("%s[%d]", p, i))
				}
			}
		case fd.IsMap():
			if fd.MapValue().Message() != nil {
				v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
					visit(mv.Message(), fmt.Sprintf("%s[%s]", p, k.String()))
					return true
				})
			}
		case fd.Message() != nil:
			visit(v.Message(), p)
		}
		return true
	})
}

func unpack[T proto.Message](t testing.TB, a *anypb.Any, at string) (T, bool) {
	t.Helper()
	var zero T
	m, err := a.UnmarshalNew()
	if err != nil {
		t.Fatalf("%s: %v", at, err)
	}
	v, ok := m.(T)
	if !ok {
		return zero, false
	}
	return v, true
}

// wasmFilter is one wasm filter as a proxy would start it.
type wasmFilter struct {
	where    string // file and place, for messages
	name     string // the HTTP filter's name (Envoy) or pluginName (Istio)
	module   string // the plugin folder it names
	rootID   string
	vmID     string
	config   string
	env      map[string]string
	failure  hosttest.FailurePolicy
	codePath string
}

// hcm is one HTTP connection manager of a bootstrap.
type hcm struct {
	where   string
	m       *hcmv3.HttpConnectionManager
	filters []string // http_filters names, in order
	wasm    []wasmFilter
}

func hcms(t testing.TB, d doc, b *bootstrapv3.Bootstrap) []hcm {
	t.Helper()
	var out []hcm
	for li, l := range b.GetStaticResources().GetListeners() {
		for ci, fc := range l.GetFilterChains() {
			for fi, f := range fc.GetFilters() {
				at := fmt.Sprintf("%s: listeners[%d].filter_chains[%d].filters[%d]", d, li, ci, fi)
				m, ok := unpack[*hcmv3.HttpConnectionManager](t, f.GetTypedConfig(), at)
				if !ok {
					continue
				}
				h := hcm{where: at, m: m}
				for hi, hf := range m.GetHttpFilters() {
					h.filters = append(h.filters, hf.GetName())
					w, ok := unpack[*wasmhttpv3.Wasm](t, hf.GetTypedConfig(), at)
					if !ok {
						continue
					}
					h.wasm = append(h.wasm, envoyWasm(t, fmt.Sprintf("%s.http_filters[%d] (%s)", at, hi, hf.GetName()), hf.GetName(), w.GetConfig()))
				}
				out = append(out, h)
			}
		}
	}
	return out
}

func envoyWasm(t testing.TB, at, name string, pc *wasmv3.PluginConfig) wasmFilter {
	t.Helper()
	vm := pc.GetVmConfig()
	if vm == nil {
		t.Fatalf("%s: no vm_config (a shared VM through vm_id references is not used by concierge)", at)
	}
	local := vm.GetCode().GetLocal()
	if local.GetFilename() == "" {
		t.Fatalf("%s: vm_config.code must be local.filename (a .wasm this repository builds), got %v", at, vm.GetCode())
	}
	w := wasmFilter{where: at, name: name, rootID: pc.GetRootId(), vmID: vm.GetVmId(), codePath: local.GetFilename(), env: map[string]string{}}
	w.module = strings.TrimSuffix(path.Base(w.codePath), ".wasm")
	if c := pc.GetConfiguration(); c != nil {
		sv, ok := unpack[*wrapperspb.StringValue](t, c, at)
		if !ok {
			t.Fatalf("%s: configuration must be a google.protobuf.StringValue holding JSON, got %s", at, c.GetTypeUrl())
		}
		w.config = sv.GetValue()
	}
	for k, v := range vm.GetEnvironmentVariables().GetKeyValues() {
		w.env[k] = v
	}
	switch {
	case pc.GetFailurePolicy() == wasmv3.FailurePolicy_FAIL_OPEN || (pc.GetFailurePolicy() == wasmv3.FailurePolicy_UNSPECIFIED && pc.GetFailOpen()):
		w.failure = hosttest.FailOpen
	case pc.GetFailurePolicy() == wasmv3.FailurePolicy_FAIL_RELOAD:
		w.failure = hosttest.FailReload
	default:
		w.failure = hosttest.FailClosed
	}
	return w
}

func istioWasm(t testing.TB, d doc, p *istioext.WasmPlugin) wasmFilter {
	t.Helper()
	at := d.String()
	w := wasmFilter{where: at, name: p.GetPluginName(), rootID: p.GetPluginName(), codePath: p.GetUrl(), env: map[string]string{}}
	ref := strings.TrimPrefix(p.GetUrl(), "oci://")
	if i := strings.LastIndexAny(ref, ":@"); i > strings.LastIndexByte(ref, '/') {
		ref = ref[:i]
	}
	w.module = path.Base(ref)
	if p.GetPluginConfig() != nil {
		// Istio hands pluginConfig to the filter as its JSON rendering.
		j, err := protojson.Marshal(p.GetPluginConfig())
		if err != nil {
			t.Fatalf("%s: pluginConfig: %v", at, err)
		}
		w.config = string(j)
	}
	for _, e := range p.GetVmConfig().GetEnv() {
		if e.GetValueFrom() == istioext.EnvValueSource_INLINE {
			w.env[e.GetName()] = e.GetValue()
		}
	}
	switch p.GetFailStrategy() {
	case istioext.FailStrategy_FAIL_OPEN:
		w.failure = hosttest.FailOpen
	case istioext.FailStrategy_FAIL_RELOAD:
		w.failure = hosttest.FailReload
	}
	return w
}

// moduleBuilt reports whether this repository builds build/<name>.wasm.
func moduleBuilt(name string) bool {
	fi, err := os.Stat(filepath.Join("..", "plugins", name))
	return err == nil && fi.IsDir() && name != "" && !strings.ContainsAny(name, `/\.`)
}

func TestEveryYAMLParsesAndValidates(t *testing.T) {
	for _, d := range docs(t) {
		t.Run(d.String(), func(t *testing.T) {
			if d.isManifest() {
				p, _ := d.wasmPlugin(t)
				for _, err := range checkWasmPlugin(d, p) {
					t.Error(err)
				}
				return
			}
			b := d.bootstrap(t)
			for _, err := range validateDeep(b, "bootstrap") {
				t.Error(err)
			}
			if len(hcms(t, d, b)) == 0 {
				t.Errorf("%s: no HTTP connection manager", d)
			}
		})
	}
}

// checkWasmPlugin applies the rules Istio's CRD validation states in
// comments (istio.io/api has no generated validator for them) and ours.
func checkWasmPlugin(d doc, p *istioext.WasmPlugin) []error {
	var errs []error
	spec, _ := d.raw["spec"].(map[string]any)
	if !strings.HasPrefix(p.GetUrl(), "oci://") {
		errs = append(errs, fmt.Errorf("%s: url %q: concierge ships OCI images (make oci), want oci://", d, p.GetUrl()))
	}
	if p.GetSelector() != nil && len(p.GetTargetRefs()) > 0 {
		errs = append(errs, fmt.Errorf("%s: at most one of selector and targetRefs may be set", d))
	}
	if p.GetPluginName() == "" {
		errs = append(errs, fmt.Errorf("%s: pluginName is required (it is the filter's root_id)", d))
	}
	if _, ok := spec["failStrategy"]; !ok {
		errs = append(errs, fmt.Errorf("%s: failStrategy must be explicit", d))
	}
	if _, ok := spec["phase"]; !ok {
		errs = append(errs, fmt.Errorf("%s: phase must be explicit (the chain order depends on it)", d))
	}
	if p.GetPriority() == nil {
		errs = append(errs, fmt.Errorf("%s: priority must be explicit (the chain order depends on it)", d))
	}
	if p.GetType() != istioext.PluginType_HTTP {
		errs = append(errs, fmt.Errorf("%s: type %v, want HTTP", d, p.GetType()))
	}
	if p.GetPluginConfig() == nil {
		errs = append(errs, fmt.Errorf("%s: pluginConfig is missing", d))
	}
	return errs
}

// TestWasmFiltersStartInHosttest starts every wasm filter of every file in
// hosttest, from its plugin folder, with exactly the configuration the
// file gives it.
func TestWasmFiltersStartInHosttest(t *testing.T) {
	for _, w := range allWasm(t) {
		t.Run(w.where, func(t *testing.T) {
			if !moduleBuilt(w.module) {
				t.Fatalf("%s: code %q names module %q, but this repository builds no plugins/%s/", w.where, w.codePath, w.module, w.module)
			}
			opts := []hosttest.Option{
				hosttest.Plugin(filepath.Join("..", "plugins", w.module)),
				hosttest.Name(w.name), hosttest.RootID(w.rootID), hosttest.VMID(w.vmID),
				hosttest.Config(w.config), hosttest.Failure(w.failure), hosttest.Workers(1),
			}
			for k, v := range w.env {
				opts = append(opts, hosttest.Env(k, v))
			}
			h := hosttest.New(t, opts...)
			if got := h.Filters(); !slices.Equal(got, []string{w.name}) {
				t.Errorf("%s: filters = %v, want [%s]", w.where, got, w.name)
			}
		})
	}
}

func allWasm(t *testing.T) []wasmFilter {
	var out []wasmFilter
	for _, d := range docs(t) {
		if d.isManifest() {
			p, _ := d.wasmPlugin(t)
			out = append(out, istioWasm(t, d, p))
			continue
		}
		for _, h := range hcms(t, d, d.bootstrap(t)) {
			out = append(out, h.wasm...)
		}
	}
	if len(out) == 0 {
		t.Fatal("no wasm filter in any file under envoy/")
	}
	return out
}

// TestLocalPaths: local.yaml's modules are where `make build` puts them,
// relative to the repository root, and it talks only to loopback.
func TestLocalPaths(t *testing.T) {
	d := findDoc(t, "local.yaml")
	b := d.bootstrap(t)
	for _, h := range hcms(t, d, b) {
		for _, w := range h.wasm {
			if want := "build/" + w.module + ".wasm"; w.codePath != want {
				t.Errorf("%s: filename %q, want %q (relative to the repository root)", w.where, w.codePath, want)
			}
		}
	}
	for _, a := range socketAddresses(b) {
		if a.addr.GetAddress() != "127.0.0.1" {
			t.Errorf("local.yaml: %s: address %q, want 127.0.0.1", a.at, a.addr.GetAddress())
		}
	}
}

type sockAddr struct {
	at   string
	addr *corev3.SocketAddress
}

func socketAddresses(b *bootstrapv3.Bootstrap) []sockAddr {
	out := []sockAddr{{"admin", b.GetAdmin().GetAddress().GetSocketAddress()}}
	for _, l := range b.GetStaticResources().GetListeners() {
		out = append(out, sockAddr{"listener " + l.GetName(), l.GetAddress().GetSocketAddress()})
	}
	for _, c := range b.GetStaticResources().GetClusters() {
		for _, e := range c.GetLoadAssignment().GetEndpoints() {
			for _, le := range e.GetLbEndpoints() {
				out = append(out, sockAddr{"cluster " + c.GetName(), le.GetEndpoint().GetAddress().GetSocketAddress()})
			}
		}
	}
	return out
}

// TestAdminOnLoopback: no shipped bootstrap exposes the admin interface.
func TestAdminOnLoopback(t *testing.T) {
	for _, d := range docs(t) {
		if d.isManifest() {
			continue
		}
		a := d.bootstrap(t).GetAdmin().GetAddress().GetSocketAddress()
		if a.GetAddress() != "127.0.0.1" {
			t.Errorf("%s: admin address %q, want 127.0.0.1", d, a.GetAddress())
		}
	}
}

// TestSameShape: local.yaml is envoy.yaml pointed at loopback: the same
// filters in the same order with the same settings, the same routes and
// the same clusters.
func TestSameShape(t *testing.T) {
	prod, local := findDoc(t, "envoy.yaml"), findDoc(t, "local.yaml")
	pb, lb := prod.bootstrap(t), local.bootstrap(t)
	ph, lh := hcms(t, prod, pb), hcms(t, local, lb)
	if len(ph) != 1 || len(lh) != 1 {
		t.Fatalf("want one HTTP connection manager in each, got %d and %d", len(ph), len(lh))
	}
	if !slices.Equal(ph[0].filters, lh[0].filters) {
		t.Errorf("http_filters: envoy.yaml %v, local.yaml %v", ph[0].filters, lh[0].filters)
	}
	for i, w := range ph[0].wasm {
		l := lh[0].wasm[i]
		if w.rootID != l.rootID || w.vmID != l.vmID || w.failure != l.failure {
			t.Errorf("filter %s: root_id/vm_id/failure differ: %q/%q/%v vs %q/%q/%v", w.name, w.rootID, w.vmID, w.failure, l.rootID, l.vmID, l.failure)
		}
	}
	pm, lm := ph[0].m, lh[0].m
	for _, f := range []string{"generate_request_id", "normalize_path", "merge_slashes", "path_with_escaped_slashes_action", "use_remote_address"} {
		fd := pm.ProtoReflect().Descriptor().Fields().ByName(protoreflect.Name(f))
		if a, b := pm.ProtoReflect().Get(fd), lm.ProtoReflect().Get(fd); !a.Equal(b) {
			t.Errorf("%s: envoy.yaml %v, local.yaml %v", f, a, b)
		}
	}
	if !proto.Equal(pm.GetRouteConfig(), lm.GetRouteConfig()) {
		t.Errorf("route_config differs:\nenvoy.yaml: %v\nlocal.yaml: %v", pm.GetRouteConfig(), lm.GetRouteConfig())
	}
	names := func(b *bootstrapv3.Bootstrap) (out []string) {
		for _, c := range b.GetStaticResources().GetClusters() {
			out = append(out, c.GetName())
		}
		return out
	}
	if a, b := names(pb), names(lb); !slices.Equal(a, b) {
		t.Errorf("clusters: envoy.yaml %v, local.yaml %v", a, b)
	}
}

// TestFilterChain: request-id first, the router last, and every per-route
// filter config names a filter of the chain and is FilterConfig.
func TestFilterChain(t *testing.T) {
	for _, d := range docs(t) {
		if d.isManifest() {
			continue
		}
		for _, h := range hcms(t, d, d.bootstrap(t)) {
			if len(h.filters) == 0 || h.filters[len(h.filters)-1] != "envoy.filters.http.router" {
				t.Errorf("%s: http_filters %v: the router must be last", h.where, h.filters)
			}
			if len(h.wasm) > 0 && h.wasm[0].module != "request-id" && moduleBuilt("request-id") {
				t.Errorf("%s: the first wasm filter is %q; request-id must run first", h.where, h.wasm[0].module)
			}
			if h.m.GetRouteConfig() == nil {
				t.Errorf("%s: route_config must be inline (rds needs a control plane)", h.where)
			}
			for _, vh := range h.m.GetRouteConfig().GetVirtualHosts() {
				check := func(at string, per map[string]*anypb.Any) {
					for name, a := range per {
						if !slices.Contains(h.filters, name) {
							t.Errorf("%s: %s: typed_per_filter_config names %q, which is not in http_filters %v", h.where, at, name, h.filters)
						}
						if _, ok := unpack[*routev3.FilterConfig](t, a, at); !ok {
							t.Errorf("%s: %s: typed_per_filter_config[%s] is %s, want envoy.config.route.v3.FilterConfig", h.where, at, name, a.GetTypeUrl())
						}
					}
				}
				check("virtual host "+vh.GetName(), vh.GetTypedPerFilterConfig())
				for _, r := range vh.GetRoutes() {
					if r.GetName() == "" {
						t.Errorf("%s: a route of %s has no name (filters' rules match on xds.route_name)", h.where, vh.GetName())
					}
					check("route "+r.GetName(), r.GetTypedPerFilterConfig())
				}
			}
		}
	}
}

// TestIstioOrder: the phases and priorities of the WasmPlugins give the
// order of envoy.yaml's http_filters.
func TestIstioOrder(t *testing.T) {
	prod := findDoc(t, "envoy.yaml")
	var want []string
	for _, w := range hcms(t, prod, prod.bootstrap(t))[0].wasm {
		want = append(want, w.name)
	}
	type placed struct {
		name     string
		phase    int
		priority int32
	}
	rank := map[istioext.PluginPhase]int{istioext.PluginPhase_AUTHN: 0, istioext.PluginPhase_AUTHZ: 1, istioext.PluginPhase_STATS: 2, istioext.PluginPhase_UNSPECIFIED_PHASE: 3}
	seen := map[string]placed{}
	for _, d := range docs(t) {
		if !d.isManifest() {
			continue
		}
		p, _ := d.wasmPlugin(t)
		pl := placed{p.GetPluginName(), rank[p.GetPhase()], p.GetPriority().GetValue()}
		if prev, ok := seen[pl.name]; ok && prev != pl {
			t.Errorf("%s: %s placed at %+v here and %+v elsewhere", d, pl.name, pl, prev)
		}
		seen[pl.name] = pl
	}
	var ps []placed
	for _, p := range seen {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].phase != ps[j].phase {
			return ps[i].phase < ps[j].phase
		}
		return ps[i].priority > ps[j].priority
	})
	var got []string
	for _, p := range ps {
		got = append(got, p.name)
	}
	if !slices.Equal(got, want) {
		t.Errorf("Istio order (phase, then priority) = %v, want envoy.yaml's %v", got, want)
	}
}

func findDoc(t testing.TB, file string) doc {
	t.Helper()
	for _, d := range docs(t) {
		if d.file == file {
			return d
		}
	}
	t.Fatalf("envoy/%s is missing", file)
	return doc{}
}
