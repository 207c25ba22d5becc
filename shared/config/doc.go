// Package config reads a filter's JSON configuration strictly, so that every
// concierge filter rejects a bad configuration with the same kind of message.
//
// A proxy-wasm filter gets its configuration as bytes in OnPluginStart and
// has exactly one chance to refuse it: convention 1 (README.md, "Writing a
// filter") says a bad
// configuration must fail loudly rather than fall back to a silent default.
// Typos are the common failure (`max_tokns`), so the reader remembers which
// keys the filter asked for and reports the rest as unknown fields once the
// filter has finished reading.
//
// The reader records the first error and keeps going with default values, so
// a parseConfig function is a straight list of getter calls followed by one
// error check, not an `if err != nil` after every field:
//
//	o, err := config.Parse(data)
//	if err != nil {
//		return cfg, fmt.Errorf("rate-limit: %w", err)
//	}
//	cfg.realm = o.String("realm", "api")
//	for _, l := range o.Objects("limits") {
//		n := l.Int("max_tokens", 0)
//		if n <= 0 {
//			l.Errorf("max_tokens", "must be > 0, got %d", n)
//		}
//	}
//	if err := o.Err(); err != nil {
//		return cfg, fmt.Errorf("rate-limit: %w", err)
//	}
//
// Err reports unread keys only after every other error. A filter whose
// fields depend on one another calls Known first, so that a typo is reported
// as itself rather than as the `issuer: required` it causes:
//
//	p.Known("issuer", "audiences", "remote_jwks")
//
// Messages name the field path and the offending value
// (`limits[0].fill_interval: must be a duration string like "500ms", got 5`);
// the plugin name prefix is the caller's.
//
// Large documents (ten thousand consumers) are read at every VM start, on
// every worker, so the reader keeps its cost per object low: an object's
// path is built only when an error or Path asks for it, and objects and
// their fields are allocated in batches rather than one by one.
//
// It sits on gjson rather than encoding/json: no reflection, far less code
// in every .wasm, and the raw value text is at hand for error messages.
package config
