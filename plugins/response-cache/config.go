package main

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	jsoncfg "github.com/concierge-wasm/concierge/shared/config"
	"github.com/concierge-wasm/concierge/shared/reply"
	"github.com/concierge-wasm/concierge/shared/rules"
)

// config is the parsed, validated plugin configuration; immutable once
// parseConfig returns.
type config struct {
	// policy holds the top-level default_ttl, max_ttl, heuristic_fraction
	// and store_set_cookie; a rule may override each.
	policy        policy
	methods       []string // cacheable request methods: GET, and HEAD unless left out
	maxEntryBytes int
	maxTotalBytes int64
	maxEntries    int
	key           keySpec
	purge         *purgeConfig // nil: PURGE requests are not special
	statusName    string       // the cache's name in Cache-Status
	// coalesceTimeout is how long a request waits for another one in
	// flight for the same key; 0 switches coalescing off.
	coalesceTimeout time.Duration
	errorFormat     reply.Format
	rules           rules.Set[policy]
}

type purgeConfig struct {
	method      string
	tokenSHA256 [sha256.Size]byte
}

// Defaults.
const (
	defaultMaxTTL            = 24 * time.Hour
	defaultHeuristicFraction = 0.1
	defaultMaxEntryBytes     = 1 << 20
	defaultMaxTotalBytes     = 64 << 20
	defaultMaxEntries        = 4096
	// maxMaxEntries keeps the index (32 bytes a slot, copied on every
	// store) small.
	maxMaxEntries = 65536
	// Envoy refuses a shared-data value past its per-key limit only at its
	// process memory; keeping entries well under 64 MiB keeps one store's
	// copy cheap.
	maxMaxEntryBytes = 16 << 20
)

// purgeTokenHeader carries the purge token; a dedicated header so that an
// auth filter earlier in the chain does not read it as a credential.
const purgeTokenHeader = "x-purge-token"

// A purge drops its URI; with x-purge-match: prefix, every URI below its
// path; with x-purge-tag, every entry tagged (Surrogate-Key, Cache-Tag)
// with one of the listed tags, on any authority.
const (
	purgeMatchHeader = "x-purge-match"
	purgeTagHeader   = "x-purge-tag"
)

func parseConfig(data []byte) (config, error) {
	o, err := jsoncfg.Parse(data)
	if err != nil {
		return config{}, err
	}
	c := config{}
	c.policy = parsePolicy(o, policy{maxTTL: defaultMaxTTL, heuristicFraction: defaultHeuristicFraction})
	c.methods = o.Strings("methods", []string{"GET", "HEAD"})
	hasGET := false
	for i, m := range c.methods {
		switch m {
		case "GET":
			hasGET = true
		case "HEAD":
		default:
			o.Errorf("methods["+itoa(i)+"]", "must be GET or HEAD (responses to other methods are never stored), got %q", m)
		}
	}
	if !hasGET && o.Err() == nil {
		o.Errorf("methods", "must include GET: HEAD is answered from GET entries")
	}
	c.maxEntryBytes = o.Int("max_entry_bytes", defaultMaxEntryBytes)
	if c.maxEntryBytes <= 0 || c.maxEntryBytes > maxMaxEntryBytes {
		o.Errorf("max_entry_bytes", "must be in 1..%d, got %d", maxMaxEntryBytes, c.maxEntryBytes)
	}
	c.maxTotalBytes = int64(o.Int("max_total_bytes", defaultMaxTotalBytes))
	if c.maxTotalBytes < int64(c.maxEntryBytes) {
		o.Errorf("max_total_bytes", "must be >= max_entry_bytes (%d), got %d", c.maxEntryBytes, c.maxTotalBytes)
	}
	c.maxEntries = o.Int("max_entries", defaultMaxEntries)
	if c.maxEntries < 2 || c.maxEntries > maxMaxEntries {
		o.Errorf("max_entries", "must be in 2..%d, got %d", maxMaxEntries, c.maxEntries)
	}
	if k, ok := o.Object("key"); ok {
		c.key = parseKey(k)
	}
	if p, ok := o.Object("purge"); ok {
		c.purge = parsePurge(p)
	}
	c.coalesceTimeout = o.Duration("coalesce_timeout", 0)
	if c.coalesceTimeout < 0 || c.coalesceTimeout > time.Minute {
		o.Errorf("coalesce_timeout", "must be in 0s..1m, got %q", c.coalesceTimeout.String())
	}
	c.statusName = o.String("cache_status_name", "concierge")
	if !jsoncfg.IsToken(c.statusName) {
		o.Errorf("cache_status_name", "must be an HTTP token (letters, digits, -._~ …), got %q", c.statusName)
	}
	c.errorFormat = reply.ParseFormat(o)
	top := c.policy
	c.rules = rules.Parse(o, func(r *jsoncfg.Object) policy { return parsePolicy(r, top) })
	if err := o.Err(); err != nil {
		return config{}, err
	}
	return c, nil
}

// parsePolicy reads the settings a rule may override, defaulting to def.
func parsePolicy(o *jsoncfg.Object, def policy) policy {
	p := def
	p.defaultTTL = o.Duration("default_ttl", def.defaultTTL)
	if p.defaultTTL < 0 {
		o.Errorf("default_ttl", "must be >= 0, got %q", p.defaultTTL.String())
	}
	p.maxTTL = o.Duration("max_ttl", def.maxTTL)
	if p.maxTTL <= 0 {
		o.Errorf("max_ttl", "must be > 0, got %q", p.maxTTL.String())
	}
	if p.defaultTTL > p.maxTTL && p.maxTTL > 0 {
		o.Errorf("default_ttl", "must be <= max_ttl (%s), got %q", p.maxTTL, p.defaultTTL.String())
	}
	if v := o.Raw("heuristic_fraction"); v.Exists() {
		if v.Type != gjson.Number || v.Float() < 0 || v.Float() > 1 {
			o.Errorf("heuristic_fraction", "must be a number in 0..1, got %s", jsoncfg.Show(v))
		} else {
			p.heuristicFraction = v.Float()
		}
	}
	p.storeSetCookie = o.Bool("store_set_cookie", def.storeSetCookie)
	return p
}

func parseKey(o *jsoncfg.Object) keySpec {
	var k keySpec
	q := o.Raw("query")
	switch {
	case !q.Exists(), q.Type == gjson.String && q.Str == "all":
		k.query = queryAll
	case q.Type == gjson.String && q.Str == "none":
		k.query = queryNone
	case q.IsArray():
		k.query = queryList
		k.queryKeep = []string{}
		for i, n := range q.Array() {
			if n.Type != gjson.String || n.Str == "" {
				o.Errorf("query["+itoa(i)+"]", "must be a parameter name, got %s", jsoncfg.Show(n))
				continue
			}
			k.queryKeep = append(k.queryKeep, n.Str)
		}
	default:
		o.Errorf("query", `must be "all", "none" or a list of parameter names, got %s`, jsoncfg.Show(q))
	}
	for i, h := range o.Strings("headers", nil) {
		l := strings.ToLower(h)
		if !jsoncfg.IsToken(l) || strings.HasPrefix(l, ":") {
			o.Errorf("headers["+itoa(i)+"]", "must be a header name, got %q", h)
		}
		k.headers = append(k.headers, l)
	}
	k.identity = o.Bool("identity", false)
	return k
}

func parsePurge(o *jsoncfg.Object) *purgeConfig {
	p := &purgeConfig{method: o.String("method", "PURGE")}
	if !jsoncfg.IsToken(p.method) || strings.ToUpper(p.method) != p.method {
		o.Errorf("method", "must be an upper-case method name, got %q", p.method)
	}
	switch p.method {
	case "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS":
		o.Errorf("method", "must not be a method clients use for content, got %q", p.method)
	}
	tok := o.String("token_sha256", "")
	b, err := hex.DecodeString(tok)
	switch {
	case !o.Has("token_sha256"):
		o.Errorf("token_sha256", "required: the hex SHA-256 of the purge token (printf %%s \"$TOKEN\" | sha256sum)")
	case err != nil || len(b) != sha256.Size:
		o.Errorf("token_sha256", "must be 64 hex digits (a SHA-256), got %q", tok)
	default:
		copy(p.tokenSHA256[:], b)
	}
	return p
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}
