package gateway

import (
	"encoding/json"
	"fmt"
	"sort"
)

type clusterRef struct{ path, name string }

// clusterRefs finds the clusters a plugin's JSON configuration names: every
// string under a key "cluster", at any depth (jwt-auth's
// providers[0].remote_jwks.http_uri.cluster, rate-limit's global.cluster). A filter
// pointed at a cluster that does not exist would start and then fail every
// callout (jwt-auth: every request 401 "keys unavailable"), so the gateway
// refuses it at start, validate mode included, naming the field. A
// configuration that is not JSON names nothing.
func clusterRefs(config []byte) []clusterRef {
	var v any
	if json.Unmarshal(config, &v) != nil {
		return nil
	}
	var out []clusterRef
	var walk func(v any, path string)
	walk = func(v any, path string) {
		switch x := v.(type) {
		case map[string]any:
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				p := k
				if path != "" {
					p = path + "." + k
				}
				if name, ok := x[k].(string); ok && k == "cluster" {
					out = append(out, clusterRef{p, name})
					continue
				}
				walk(x[k], p)
			}
		case []any:
			for i, e := range x {
				walk(e, fmt.Sprintf("%s[%d]", path, i))
			}
		}
	}
	walk(v, "")
	return out
}
