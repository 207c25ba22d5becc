// Package shareddata holds what the filters that keep state in proxy-wasm
// shared data (jwt-auth, rate-limit, response-cache, circuit-breaker)
// agree on: the namespace of their keys (convention 5 in README.md,
// "Writing a filter": `<plugin>/<namespace>/…`).
package shareddata

import "github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"

// Namespace names one filter configuration's shared data: its root_id, or
// its plugin_name when the root_id is empty, else "default". Two
// configurations of one filter on one proxy (two routes, two listeners)
// then keep apart, while every worker VM of one configuration shares the
// same keys. Call it from OnPluginStart: the properties exist there.
func Namespace() string {
	for _, prop := range [...]string{"plugin_root_id", "plugin_name"} {
		if b, err := proxywasm.GetProperty([]string{prop}); err == nil && len(b) > 0 {
			return string(b)
		}
	}
	return "default"
}
