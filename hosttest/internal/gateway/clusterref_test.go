package gateway

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestClusterRefs(t *testing.T) {
	for _, tc := range []struct {
		config string
		want   []clusterRef
	}{
		{`{"providers":[{"name":"idp","remote_jwks":{"http_uri":{"uri":"https://idp/jwks","cluster":"idp"}}}]}`, []clusterRef{{"providers[0].remote_jwks.http_uri.cluster", "idp"}}},
		{`{"global":{"cluster":"ratelimit","domain":"d"},"limits":[]}`, []clusterRef{{"global.cluster", "ratelimit"}}},
		{`{"cluster":{"name":"x"}}`, nil},
		{`not json`, nil},
		{``, nil},
	} {
		if got := clusterRefs([]byte(tc.config)); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("clusterRefs(%s) = %v, want %v", tc.config, got, tc.want)
		}
	}
}

// TestValidateCatchesUnknownCluster: a jwt-auth remote_jwks.http_uri.cluster that
// names no cluster fails --mode validate, naming the field and the cluster
// (before, it passed, and every request got 401 "keys unavailable").
func TestValidateCatchesUnknownCluster(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "..", "envoy", "local.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	y := strings.Replace(string(raw), `"cluster": "idp"`, `"cluster": "idp-typo"`, 1)
	if y == string(raw) {
		t.Fatal(`envoy/local.yaml has no "cluster": "idp" to misspell`)
	}
	path := filepath.Join(t.TempDir(), "local.yaml")
	if err := os.WriteFile(path, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := Main([]string{"-c", path, "--mode", "validate", "--wasm-dir", shippedModules(t)}, &out, &errb, nil)
	want := `providers[0].remote_jwks.http_uri.cluster names cluster "idp-typo", which the bootstrap does not define`
	if code != 1 || !strings.Contains(errb.String(), want) {
		t.Errorf("validate with a misspelt JWKS cluster: exit %d, stderr:\n%s\nwant exit 1 and %q", code, errb.String(), want)
	}
}
