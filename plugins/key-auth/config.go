package main

import (
	"crypto/sha256"
	"slices"
	"strconv"
	"strings"
	"time"

	jsoncfg "github.com/concierge-wasm/concierge/shared/config"
	"github.com/concierge-wasm/concierge/shared/identity"
	"github.com/concierge-wasm/concierge/shared/reply"
	"github.com/concierge-wasm/concierge/shared/rules"
)

// config is the parsed, validated plugin configuration. It is immutable once
// parseConfig returns.
type config struct {
	consumers []consumer
	// keys finds a key by the SHA-256 digest of its value: the only form in
	// which a key is kept, whether configured as key_sha256 or as key.
	keys map[[sha256.Size]byte]*apiKey
	// header is where the key is read from (lower case); queryParam, when
	// not "", is a query parameter read as well.
	header     string
	queryParam string
	// hideCredentials removes the key from the upstream request.
	hideCredentials bool
	// allowMissing lets a request without any key through unauthenticated
	// (rules may override it per route).
	allowMissing bool
	perms        methodPermissions
	// consumerHeader and permissionsHeader carry the verified consumer
	// upstream (lower case).
	consumerHeader    string
	permissionsHeader string
	realm             string       // WWW-Authenticate realm; "" leaves the parameter out
	errorFormat       reply.Format // shape of denial bodies ("error_format")
	shadow            bool         // top-level "shadow"
	rules             rules.Set[ruleOverride]
	// guard recognises the identity headers removed from every incoming
	// request, in any spelling an upstream reads as them (x_consumer):
	// every concierge filter's (identity.DefaultHeaders) plus the two
	// configured ones. With "spoofed_identity_headers": "reject" such a
	// request gets 400.
	guard *identity.Guard
	// plaintext lists the config paths of keys given in plain text, for the
	// start-up warning (never the keys themselves).
	plaintext []string
}

// consumer is one client application with its keys and permissions.
type consumer struct {
	name        string
	permissions []string
	// permissionsValue is permissions comma-joined, the upstream header.
	permissionsValue string
}

// apiKey is one configured key: its digest, owner and validity window.
type apiKey struct {
	digest   [sha256.Size]byte
	consumer int
	// notBefore and notAfter bound when the key is accepted:
	// notBefore <= now < notAfter; a zero time is no bound.
	notBefore, notAfter time.Time
	// path is the key's place in the configuration ("consumers[2].keys[0]"),
	// what logs name instead of the key.
	path string
}

// ruleOverride is what a rule may change for the requests it matches.
type ruleOverride struct {
	// allowMissing defaults to the top-level allow_missing.
	allowMissing bool
	// require lists permissions the consumer needs on the matched route,
	// besides the one its method needs.
	require []string
	// lowers is set when the rule lets keyless requests through although
	// the top level does not.
	lowers bool
}

// LowersProtection tells rules.Parse that the rule weakens the filter
// (allow_missing where the top level has none), so that it applies only to
// requests that match it in every form the router and upstream may see.
func (o ruleOverride) LowersProtection() bool { return o.lowers }

// methodPermissions maps request methods to the permission they need;
// other is the permission of every method not listed. "" means none.
type methodPermissions struct {
	methods []string // upper case
	perms   []string // parallel to methods
	other   string
}

func (m *methodPermissions) of(method string) string {
	for i, name := range m.methods {
		if name == method {
			return m.perms[i]
		}
	}
	return m.other
}

var defaultPermissions = methodPermissions{
	methods: []string{"GET", "HEAD", "OPTIONS"},
	perms:   []string{"read", "read", "read"},
	other:   "write",
}

const (
	defaultHeader            = "x-api-key"
	defaultConsumerHeader    = "x-consumer"
	defaultPermissionsHeader = "x-consumer-permissions"
	// maxKeyBytes bounds a key, configured or presented: a longer one is
	// refused without being hashed.
	maxKeyBytes = 1024
	// maxNameBytes bounds a consumer name, which also names a metric.
	maxNameBytes = 64
)

// headers the identity headers may not be.
var reservedHeaders = []string{"host", "content-length", "content-type", "transfer-encoding",
	"connection", "keep-alive", "te", "trailer", "upgrade", "proxy-connection", "cookie",
	"authorization", "x-request-id"}

var topLevelFields = []string{"consumers", "header", "query_param", "hide_credentials", "allow_missing",
	"permission_by_method", "consumer_header", "permissions_header", "realm", "error_format", "shadow", "rules", identity.SpoofOption}

var consumerFields = []string{"name", "keys", "permissions"}

var keyFields = []string{"key_sha256", "key", "not_before", "not_after"}

// parseConfig decodes, defaults and validates the plugin configuration.
// Errors name the field path and the value, e.g.
// `consumers[1].keys[0].key_sha256: must be 64 hex digits, got 12`.
// Envoy's log prefix (`wasm log key-auth:`) names the filter.
func parseConfig(data []byte) (config, error) {
	o, err := jsoncfg.Parse(data)
	if err != nil {
		return config{}, err
	}
	o.Known(topLevelFields...)
	c := config{}
	hasConsumers := o.Has("consumers")
	cons := o.Objects("consumers")
	c.header = strings.ToLower(o.String("header", defaultHeader))
	c.queryParam = o.String("query_param", "")
	hasQuery := o.Has("query_param")
	c.hideCredentials = o.Bool("hide_credentials", true)
	c.allowMissing = o.Bool("allow_missing", false)
	c.consumerHeader = strings.ToLower(o.String("consumer_header", defaultConsumerHeader))
	c.permissionsHeader = strings.ToLower(o.String("permissions_header", defaultPermissionsHeader))
	c.realm = o.String("realm", "")
	c.errorFormat = reply.ParseFormat(o)
	c.perms = defaultPermissions
	if pm, ok := o.Object("permission_by_method"); ok {
		c.perms = parsePermissionByMethod(pm)
	}

	switch {
	case !hasConsumers:
		o.Errorf("consumers", "required")
	case cons != nil && len(cons) == 0:
		o.Errorf("consumers", "must not be empty")
	}
	if !jsoncfg.IsToken(c.header) {
		o.Errorf("header", "must be a header name, got %q", c.header)
	}
	if hasQuery && c.queryParam == "" {
		o.Errorf("query_param", "must not be empty")
	}
	checkIdentityHeader(o, "consumer_header", c.consumerHeader)
	checkIdentityHeader(o, "permissions_header", c.permissionsHeader)
	if c.consumerHeader == c.permissionsHeader {
		o.Errorf("permissions_header", "must differ from consumer_header, both are %q", c.consumerHeader)
	}
	if !validQuotedValue(c.realm) {
		o.Errorf("realm", "must not contain quotes, backslashes or control characters, got %q", c.realm)
	}
	c.guard = identity.NewGuard(identity.ParseSpoofAction(o), c.consumerHeader, c.permissionsHeader)
	// The wiring strips identity headers before reading the key: a key
	// header among them would always be missing.
	if c.guard.Owns(c.header) {
		o.Errorf("header", "%q is an identity header this filter removes", c.header)
	}

	c.keys = make(map[[sha256.Size]byte]*apiKey, len(cons))
	c.consumers = make([]consumer, 0, len(cons))
	names := make(map[string]int, len(cons))
	perms := map[string]string{}
	for i, co := range cons {
		c.parseConsumer(co, i, names, perms)
	}
	c.rules = rules.Parse(o, c.parseOverride)
	c.shadow = c.rules.Shadow
	if err := o.Err(); err != nil {
		return config{}, err
	}
	return c, nil
}

// parseConsumer reads consumers[i] and adds its keys to c.keys, refusing a
// key that another consumer (or this one) already has. interned holds one
// copy of each permission name, which thousands of consumers share.
func (c *config) parseConsumer(o *jsoncfg.Object, i int, names map[string]int, interned map[string]string) {
	o.Known(consumerFields...)
	name := o.String("name", "")
	hasPerms := o.Has("permissions")
	perms := o.Strings("permissions", nil)
	hasKeys := o.Has("keys")
	keys := o.Objects("keys")
	switch {
	case !o.Has("name"):
		o.Errorf("name", "required")
	case !validName(name):
		o.Errorf("name", "must be 1 to %d letters, digits, '-' or '_', got %q", maxNameBytes, name)
	default:
		// Prometheus exporters turn '-' into '_': "a-b" and "a_b" would
		// share one metric name.
		folded := strings.ReplaceAll(name, "-", "_")
		if j, dup := names[folded]; dup {
			if prev := c.consumers[j].name; prev != name {
				o.Errorf("name", "%q and consumers[%d] %q would share a metric name", name, j, prev)
			} else {
				o.Errorf("name", "duplicate %q (also consumers[%d])", name, j)
			}
		}
		names[folded] = i
	}
	if hasPerms && perms != nil {
		for j, p := range perms {
			key := "permissions[" + strconv.Itoa(j) + "]"
			switch {
			case !jsoncfg.IsToken(p):
				o.Errorf(key, "must be a permission name (letters, digits, and !#$%%&'*+-.^_`|~), got %q", p)
			case slices.Index(perms, p) < j:
				o.Errorf(key, "duplicate %q", p)
			}
		}
	}
	switch {
	case !hasKeys:
		o.Errorf("keys", "required")
	case keys != nil && len(keys) == 0:
		o.Errorf("keys", "must not be empty")
	}
	// Clones: the JSON reader's strings point into the whole configuration
	// document, which would otherwise stay in memory for good.
	name = strings.Clone(name)
	for j, p := range perms {
		s, ok := interned[p]
		if !ok {
			s = strings.Clone(p)
			interned[s] = s
		}
		perms[j] = s
	}
	c.consumers = append(c.consumers, consumer{name: name, permissions: perms, permissionsValue: strings.Join(perms, ",")})
	for _, ko := range keys {
		k := c.parseKey(ko, i)
		if k == nil {
			continue
		}
		if prev, dup := c.keys[k.digest]; dup {
			ko.Errorf("", "duplicate key: the same key as %s (consumer %q)", prev.path, c.consumers[prev.consumer].name)
			continue
		}
		c.keys[k.digest] = k
	}
}

// parseKey reads one element of a consumer's keys; nil when it is unusable
// (the error is recorded).
func (c *config) parseKey(o *jsoncfg.Object, owner int) *apiKey {
	o.Known(keyFields...)
	hasDigest, hasPlain := o.Has("key_sha256"), o.Has("key")
	digest := o.String("key_sha256", "")
	plain := o.String("key", "")
	k := &apiKey{consumer: owner, path: o.Path()}
	k.notBefore = parseTime(o, "not_before")
	k.notAfter = parseTime(o, "not_after")
	switch {
	case hasDigest && hasPlain:
		o.Errorf("", "set either key_sha256 or key, not both")
		return nil
	case hasDigest:
		if len(digest) != 2*sha256.Size {
			o.Errorf("key_sha256", "must be %d hex digits (printf %%s \"$KEY\" | sha256sum), got %d characters", 2*sha256.Size, len(digest))
			return nil
		}
		if !decodeHex(k.digest[:], digest) {
			o.Errorf("key_sha256", "must be %d hex digits, got a non-hex character", 2*sha256.Size)
			return nil
		}
	case hasPlain:
		// The key is never quoted back: only its length and what is wrong.
		switch {
		case plain == "":
			o.Errorf("key", "must not be empty")
			return nil
		case len(plain) > maxKeyBytes:
			o.Errorf("key", "must be at most %d bytes, got %d", maxKeyBytes, len(plain))
			return nil
		case !isHeaderValue(plain):
			o.Errorf("key", "must be printable without leading or trailing spaces (it travels in a header)")
			return nil
		}
		k.digest = sha256.Sum256([]byte(plain))
		c.plaintext = append(c.plaintext, k.path)
	default:
		o.Errorf("", "needs key_sha256 (recommended) or key")
		return nil
	}
	if !k.notBefore.IsZero() && !k.notAfter.IsZero() && !k.notBefore.Before(k.notAfter) {
		o.Errorf("not_after", "must be after not_before (%s), got %s", k.notBefore.Format(time.RFC3339Nano), k.notAfter.Format(time.RFC3339Nano))
		return nil
	}
	return k
}

// parseTime reads an optional RFC 3339 time.
func parseTime(o *jsoncfg.Object, key string) time.Time {
	if !o.Has(key) {
		return time.Time{}
	}
	s := o.String(key, "")
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		o.Errorf(key, "must be an RFC 3339 time like \"2026-01-31T00:00:00Z\", got %q", s)
		return time.Time{}
	}
	return t
}

// parsePermissionByMethod reads `{"GET": "read", …, "*": "write"}`. It
// replaces the default map entirely, and must say what every other method
// needs ("*"): a method left out must never mean "no permission needed" by
// accident. "" as a value means no permission is needed.
func parsePermissionByMethod(o *jsoncfg.Object) methodPermissions {
	var m methodPermissions
	hasOther := false
	for _, method := range o.Keys() {
		perm := o.String(method, "")
		if perm != "" && !jsoncfg.IsToken(perm) {
			o.Errorf(method, "must be a permission name or \"\", got %q", perm)
		}
		if method == "*" {
			hasOther = true
			m.other = perm
			continue
		}
		if !jsoncfg.IsToken(method) {
			o.Errorf("", "%q is not an HTTP method", method)
			continue
		}
		up := strings.ToUpper(method)
		if slices.Contains(m.methods, up) {
			o.Errorf(method, "duplicate method %q", up)
			continue
		}
		m.methods = append(m.methods, up)
		m.perms = append(m.perms, perm)
	}
	if !hasOther {
		o.Errorf("", `needs a "*" entry: the permission of every method not listed`)
	}
	return m
}

// parseOverride reads a rule's own keys (rules.Parse calls it once per
// rule): allow_missing and require.
func (c *config) parseOverride(r *jsoncfg.Object) ruleOverride {
	ov := ruleOverride{allowMissing: r.Bool("allow_missing", c.allowMissing)}
	ov.lowers = ov.allowMissing && !c.allowMissing
	if r.Has("require") {
		ov.require = r.Strings("require", nil)
		if ov.require != nil && len(ov.require) == 0 {
			r.Errorf("require", "must not be empty")
		}
		for i, p := range ov.require {
			if !jsoncfg.IsToken(p) {
				r.Errorf("require["+strconv.Itoa(i)+"]", "must be a permission name, got %q", p)
			}
		}
	}
	return ov
}

func checkIdentityHeader(o *jsoncfg.Object, key, name string) {
	if !jsoncfg.IsToken(name) {
		o.Errorf(key, "must be a header name, got %q", name)
		return
	}
	if slices.Contains(reservedHeaders, name) {
		o.Errorf(key, "%q may not carry the consumer", name)
	}
}

// normalizeHeader is a header name as upstreams that fold '_' into '-'
// read it.
func normalizeHeader(name string) string {
	return strings.ReplaceAll(strings.ToLower(name), "_", "-")
}

// validName reports whether s can name a consumer: in a header value, a
// log line and a metric name alike.
func validName(s string) bool {
	if s == "" || len(s) > maxNameBytes {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// isHeaderValue reports whether s is a non-empty field value without
// control characters or surrounding whitespace, which proxies would trim.
func isHeaderValue(s string) bool {
	if s == "" || s[0] == ' ' || s[0] == '\t' || s[len(s)-1] == ' ' || s[len(s)-1] == '\t' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// validQuotedValue reports whether s can sit inside a quoted-string of a
// WWW-Authenticate header without escaping.
func validQuotedValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// decodeHex decodes the hex digits of s into dst, which is len(s)/2 bytes
// long; false on any other character. It is encoding/hex.Decode without
// the copy of s into a byte slice, which start-up would make once per key.
func decodeHex(dst []byte, s string) bool {
	for i := range dst {
		hi, ok1 := fromHex(s[2*i])
		lo, ok2 := fromHex(s[2*i+1])
		if !ok1 || !ok2 {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

func fromHex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
