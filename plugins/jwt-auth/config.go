package main

import (
	"encoding/base64"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	jsoncfg "github.com/concierge-wasm/concierge/shared/config"
	"github.com/concierge-wasm/concierge/shared/identity"
	"github.com/concierge-wasm/concierge/shared/reply"
	"github.com/concierge-wasm/concierge/shared/rules"
)

// config is the parsed, validated plugin configuration. It is immutable once
// parseConfig returns.
type config struct {
	providers   []*provider
	realm       string       // WWW-Authenticate realm; "" leaves the parameter out
	errorFormat reply.Format // shape of denial bodies ("error_format")
	shadow      bool         // top-level "shadow": decide, log and count, but let every request through
	// rules are the per-route rules (shared/rules), with this filter's
	// overrides: allow_missing, require, providers.
	rules rules.Set[ruleOverride]
	// locations is every place a token is looked for, over all providers,
	// without duplicates; provider.locs indexes into it.
	locations []location
	// ownedHeaders are the identity headers this filter sets (always
	// x-user-id and x-user-roles, plus claim_to_headers and
	// forward_payload_header).
	ownedHeaders []string
	// guard recognises ownedHeaders and the identity headers every concierge
	// filter owns (identity.DefaultHeaders), in any spelling; the wiring
	// removes them from every incoming request before anything else, and
	// answers 400 instead when "spoofed_identity_headers" is "reject".
	guard *identity.Guard
	// acceptVerified lets a request that key-auth verified earlier in the
	// chain through without a token (accept.go); guardWhenVerified is guard
	// for such a request, without the headers key-auth has set.
	acceptVerified    bool
	guardWhenVerified *identity.Guard
}

// ruleOverride is what a rule of "rules" may change for the requests it
// matches, besides the shared "enabled" and "shadow".
type ruleOverride struct {
	// allowMissing lets a request without any token through, without an
	// identity; a token that is present must still be valid.
	allowMissing bool
	// require must be met by the verified claims (403 otherwise); it has no
	// claims when the rule sets none.
	require requirement
	// providers, when not nil, lists the indexes of the providers a token
	// must come from on this route (401 "issuer not allowed" otherwise).
	providers []int
}

// LowersProtection reports whether the override lets through what the
// top-level settings stop: allow_missing does; require and providers only
// narrow what passes. rules.Parse reads it, so that such a rule applies
// only to a request the router sends where the rule says.
func (o ruleOverride) LowersProtection() bool { return o.allowMissing }

// allows reports whether a token verified by provider i may be used under
// the override.
func (o *ruleOverride) allows(i int) bool {
	return o == nil || o.providers == nil || slices.Contains(o.providers, i)
}

// provider is one token issuer with its keys and claim policy.
type provider struct {
	index  int
	name   string
	issuer string
	// audiences, when not empty, must intersect the token's "aud".
	audiences []string
	algs      algSet
	// localKeys is the parsed local_jwks; nil without one.
	localKeys *keySet
	// hmacSecret verifies the HS algorithms; nil without one.
	hmacSecret []byte
	// remote is where the JWKS is fetched from; nil without remote_jwks.
	remote *remoteJWKS
	// locs has bit i set when the provider reads config.locations[i].
	locs uint64
	// sources are the provider's own token locations, in config order.
	sources       []location
	clockSkew     time.Duration
	requireExp    bool
	maxTokenBytes int
	// forward keeps the token in the upstream request.
	forward              bool
	forwardPayloadHeader string
	claimToHeaders       []claimHeader
}

// remoteJWKS says where and how often to fetch a provider's JWKS.
type remoteJWKS struct {
	uri       string
	authority string // :authority of the fetch, from uri
	path      string // :path of the fetch, from uri (with its query)
	cluster   string
	timeout   time.Duration
	// cacheDuration is the refresh period; the last good set keeps serving
	// for 2 × cacheDuration when refreshes fail.
	cacheDuration time.Duration
	// minRefresh is the shortest time between two fetches triggered by an
	// unknown kid.
	minRefresh time.Duration
}

// claimHeader copies a claim into an upstream request header.
type claimHeader struct {
	claim  string
	header string
}

// Defaults. Envoy jwt_authn's where it has one.
const (
	defaultClockSkew     = 60 * time.Second
	defaultMaxTokenBytes = 8192
	maxMaxTokenBytes     = 1 << 20
	// defaultCacheDuration is Envoy jwt_authn's remote_jwks cache_duration.
	defaultCacheDuration = 600 * time.Second
	defaultMinRefresh    = 30 * time.Second
	defaultFetchTimeout  = 5 * time.Second
	// maxFetchTimeout bounds how long a request may wait for keys.
	maxFetchTimeout = 60 * time.Second
	// maxLocations is the number of distinct token locations over all
	// providers (one bit each in provider.locs).
	maxLocations = 64
)

var defaultClaimToHeaders = []claimHeader{
	{claim: "sub", header: "x-user-id"},
	{claim: "roles", header: "x-user-roles"},
	{claim: "scope", header: "x-user-roles"}, // used when there is no "roles"
}

// headers that claim_to_headers and forward_payload_header may not set.
var reservedHeaders = []string{"host", "content-length", "content-type", "transfer-encoding",
	"connection", "keep-alive", "te", "trailer", "upgrade", "proxy-connection", "cookie"}

// topLevelFields are the keys of the configuration object.
var topLevelFields = []string{"providers", "realm", "error_format", "shadow", "rules", "accept_verified_identity", identity.SpoofOption}

var providerFields = []string{"name", "issuer", "audiences", "algorithms", "local_jwks",
	"hmac_secret", "hmac_secret_base64", "remote_jwks", "from_headers", "from_params",
	"from_cookies", "clock_skew", "require_exp", "max_token_bytes", "forward",
	"forward_payload_header", "claim_to_headers"}

// parseConfig decodes, defaults and validates the plugin configuration.
// Errors name the field path and the value, e.g.
// `providers[0].algorithms: must not be empty`.
func parseConfig(data []byte) (config, error) {
	o, err := jsoncfg.Parse(data)
	if err != nil {
		return config{}, err
	}
	c := config{}
	o.Known(topLevelFields...)
	provs := o.Objects("providers")
	c.realm = o.String("realm", "")
	c.errorFormat = reply.ParseFormat(o)
	c.acceptVerified = o.Bool("accept_verified_identity", false)
	spoof := identity.ParseSpoofAction(o)
	if !validQuotedValue(c.realm) {
		o.Errorf("realm", "must not contain quotes, backslashes or control characters, got %q", c.realm)
	}
	switch {
	case !o.Has("providers"):
		o.Errorf("providers", "required")
	case provs != nil && len(provs) == 0:
		o.Errorf("providers", "must not be empty")
	}
	for i, po := range provs {
		p := parseProvider(po)
		p.index = i
		for _, q := range c.providers {
			if q.issuer == p.issuer {
				po.Errorf("issuer", "duplicate %q (also providers[%d])", p.issuer, q.index)
			}
			if q.name == p.name {
				po.Errorf("name", "duplicate %q (also providers[%d])", p.name, q.index)
			}
		}
		c.providers = append(c.providers, p)
	}
	c.buildLocations(provs)
	c.buildOwnedHeaders(provs)
	c.guard = identity.NewGuard(spoof, c.ownedHeaders...)
	c.rules = rules.Parse(o, c.parseOverride)
	c.shadow = c.rules.Shadow
	c.guardWhenVerified = c.guard.Except(identity.DefaultHeaders()...)
	if err := o.Err(); err != nil {
		return config{}, err
	}
	return c, nil
}

// parseProvider reads one element of "providers". Errors are recorded in
// o's document; the first one wins, so the checks below run in the order
// their messages should be seen.
func parseProvider(o *jsoncfg.Object) *provider {
	o.Known(providerFields...)
	p := &provider{}
	p.name = o.String("name", "")
	p.issuer = o.String("issuer", "")
	auds := o.Strings("audiences", nil)
	hasAlgs := o.Has("algorithms")
	algNames := o.Strings("algorithms", nil)
	localJWKS := o.Raw("local_jwks")
	hasSecret, hasSecretB64, hasRemote := o.Has("hmac_secret"), o.Has("hmac_secret_base64"), o.Has("remote_jwks")
	secret := o.String("hmac_secret", "")
	secretB64 := o.String("hmac_secret_base64", "")
	remote, _ := o.Object("remote_jwks")
	fromHeaders := o.Objects("from_headers")
	fromParams := o.Strings("from_params", nil)
	fromCookies := o.Strings("from_cookies", nil)
	p.clockSkew = o.Duration("clock_skew", defaultClockSkew)
	p.requireExp = o.Bool("require_exp", true)
	p.maxTokenBytes = o.Int("max_token_bytes", defaultMaxTokenBytes)
	p.forward = o.Bool("forward", false)
	p.forwardPayloadHeader = o.String("forward_payload_header", "")
	hasClaimToHeaders := o.Has("claim_to_headers")
	claimToHeaders := o.Objects("claim_to_headers")

	// Identity.
	if p.issuer == "" {
		o.Errorf("issuer", "required")
	}
	if p.name == "" {
		p.name = p.issuer
	}
	for i, a := range auds {
		if a == "" {
			o.Errorf("audiences["+strconv.Itoa(i)+"]", "must not be empty")
		}
	}
	p.audiences = auds

	// Algorithms.
	switch {
	case !hasAlgs:
		o.Errorf("algorithms", "required")
	case algNames != nil && len(algNames) == 0:
		o.Errorf("algorithms", "must not be empty")
	}
	for i, name := range algNames {
		key := "algorithms[" + strconv.Itoa(i) + "]"
		a := lookupAlg(name)
		switch {
		case strings.EqualFold(name, "none"):
			o.Errorf(key, "%q is not allowed", name)
		case a == nil:
			o.Errorf(key, "unknown algorithm %q", name)
		case p.algs&a.bit != 0:
			o.Errorf(key, "duplicate %q", name)
		default:
			p.algs |= a.bit
		}
	}

	// Key sources.
	if hasSecret && hasSecretB64 {
		o.Errorf("", "hmac_secret and hmac_secret_base64 are mutually exclusive")
		return p
	}
	if localJWKS.Exists() && hasRemote {
		o.Errorf("", "local_jwks and remote_jwks are mutually exclusive")
		return p
	}
	secretKey := "hmac_secret"
	switch {
	case hasSecret:
		if secret == "" {
			o.Errorf("hmac_secret", "must not be empty")
		}
		p.hmacSecret = []byte(secret)
	case hasSecretB64:
		secretKey = "hmac_secret_base64"
		b, ok := decodeSecret(secretB64)
		switch {
		case !ok:
			o.Errorf("hmac_secret_base64", "invalid base64")
		case len(b) == 0:
			o.Errorf("hmac_secret_base64", "must not be empty")
		}
		p.hmacSecret = b
	}
	if !localJWKS.Exists() && !hasRemote && p.hmacSecret == nil {
		o.Errorf("", "needs a key source: local_jwks, remote_jwks, hmac_secret or hmac_secret_base64")
		return p
	}
	var hasHS, hasAsym bool
	for i := range algorithms {
		a := &algorithms[i]
		if p.algs&a.bit == 0 {
			continue
		}
		if a.kind == kindHMAC {
			hasHS = true
			if p.hmacSecret == nil {
				o.Errorf("hmac_secret", "required by algorithm %s", a.name)
				return p
			}
			if n := minHMACKeyBytes(a); len(p.hmacSecret) < n {
				o.Errorf(secretKey, "%d bytes is too short for %s, need at least %d", len(p.hmacSecret), a.name, n)
				return p
			}
		} else {
			hasAsym = true
			if !localJWKS.Exists() && !hasRemote {
				o.Errorf("", "algorithm %s needs local_jwks or remote_jwks", a.name)
				return p
			}
		}
	}
	if p.hmacSecret != nil && !hasHS && p.algs != 0 {
		o.Errorf(secretKey, "unused: algorithms has no HS algorithm")
		return p
	}
	if (localJWKS.Exists() || hasRemote) && !hasAsym && p.algs != 0 {
		src := "local_jwks"
		if hasRemote {
			src = "remote_jwks"
		}
		o.Errorf(src, "unused: algorithms has no RS, PS, ES or EdDSA algorithm")
		return p
	}
	if localJWKS.Exists() {
		var doc []byte
		switch {
		case localJWKS.IsObject():
			doc = []byte(localJWKS.Raw)
		case localJWKS.Type == gjson.String:
			doc = []byte(localJWKS.Str)
		default:
			o.Errorf("local_jwks", "must be a JWKS object or a string holding one, got %s", jsoncfg.Show(localJWKS))
			return p
		}
		ks, err := parseJWKS(doc)
		if err != nil {
			e := err.(*jwksError)
			key := "local_jwks"
			if e.path != "" {
				key += "." + e.path
			}
			o.Errorf(key, "%s", e.msg)
			return p
		}
		if !ks.fitsAny(p.algs) {
			o.Errorf("local_jwks", "no key fits algorithms %s", strings.Join(algNames, ", "))
			return p
		}
		p.localKeys = ks
	}
	if remote != nil {
		p.remote = parseRemoteJWKS(remote)
	}

	// Where tokens come from; without any, `authorization: Bearer <token>`.
	for i, h := range fromHeaders {
		h.Known("name", "value_prefix")
		name := h.String("name", "")
		prefix := h.String("value_prefix", "")
		if !validHeaderName(name) {
			o.Errorf("from_headers["+strconv.Itoa(i)+"].name", "invalid header name %q", name)
		}
		p.sources = append(p.sources, location{kind: locHeader, name: strings.ToLower(name), prefix: prefix})
	}
	for i, name := range fromParams {
		if name == "" {
			o.Errorf("from_params["+strconv.Itoa(i)+"]", "must not be empty")
		}
		p.sources = append(p.sources, location{kind: locParam, name: name})
	}
	for i, name := range fromCookies {
		if !jsoncfg.IsToken(name) {
			o.Errorf("from_cookies["+strconv.Itoa(i)+"]", "invalid cookie name %q", name)
		}
		p.sources = append(p.sources, location{kind: locCookie, name: name})
	}
	if len(p.sources) == 0 {
		p.sources = []location{{kind: locHeader, name: "authorization", prefix: "Bearer "}}
	}

	// Limits.
	if p.clockSkew < 0 {
		o.Errorf("clock_skew", "must be >= 0, got %q", p.clockSkew.String())
	}
	switch {
	case p.maxTokenBytes <= 0:
		o.Errorf("max_token_bytes", "must be > 0, got %d", p.maxTokenBytes)
	case p.maxTokenBytes > maxMaxTokenBytes:
		o.Errorf("max_token_bytes", "must be <= %d, got %d", maxMaxTokenBytes, p.maxTokenBytes)
	}

	// Identity headers.
	if p.forwardPayloadHeader != "" {
		checkIdentityHeader(o, "forward_payload_header", p.forwardPayloadHeader)
		p.forwardPayloadHeader = strings.ToLower(p.forwardPayloadHeader)
	}
	if !hasClaimToHeaders {
		p.claimToHeaders = defaultClaimToHeaders
	} else {
		p.claimToHeaders = []claimHeader{}
		for i, ch := range claimToHeaders {
			ch.Known("claim_name", "header_name")
			claim := ch.String("claim_name", "")
			header := ch.String("header_name", "")
			key := "claim_to_headers[" + strconv.Itoa(i) + "]"
			if claim == "" {
				o.Errorf(key+".claim_name", "required")
			}
			if header == "" {
				o.Errorf(key+".header_name", "required")
			}
			checkIdentityHeader(o, key+".header_name", header)
			p.claimToHeaders = append(p.claimToHeaders, claimHeader{claim: claim, header: strings.ToLower(header)})
		}
	}
	return p
}

// parseRemoteJWKS reads "remote_jwks".
func parseRemoteJWKS(o *jsoncfg.Object) *remoteJWKS {
	o.Known("http_uri", "cache_duration", "min_refresh")
	r := &remoteJWKS{}
	hasHU := o.Has("http_uri")
	hu, _ := o.Object("http_uri")
	r.cacheDuration = o.Duration("cache_duration", defaultCacheDuration)
	r.minRefresh = o.Duration("min_refresh", defaultMinRefresh)
	if !hasHU {
		o.Errorf("http_uri", "required")
		return r
	}
	hu.Known("uri", "cluster", "timeout")
	r.uri = hu.String("uri", "")
	r.cluster = hu.String("cluster", "")
	r.timeout = hu.Duration("timeout", defaultFetchTimeout)
	u, err := url.Parse(r.uri)
	switch {
	case r.uri == "":
		hu.Errorf("uri", "required")
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.Fragment != "":
		hu.Errorf("uri", "must be an absolute http or https URL, got %q", r.uri)
	case r.cluster == "":
		hu.Errorf("cluster", "required")
	case r.timeout <= 0:
		hu.Errorf("timeout", "must be > 0, got %q", r.timeout.String())
	case r.timeout > maxFetchTimeout:
		hu.Errorf("timeout", "must be <= %s, got %q", maxFetchTimeout, r.timeout.String())
	case r.cacheDuration <= 0:
		o.Errorf("cache_duration", "must be > 0, got %q", r.cacheDuration.String())
	case r.minRefresh <= 0:
		o.Errorf("min_refresh", "must be > 0, got %q", r.minRefresh.String())
	default:
		r.authority = u.Host
		r.path = u.EscapedPath()
		if r.path == "" {
			r.path = "/"
		}
		if u.RawQuery != "" {
			r.path += "?" + u.RawQuery
		}
	}
	return r
}

// buildLocations collects the token locations of all providers into
// c.locations, without duplicates, and sets each provider's locs bits.
func (c *config) buildLocations(provs []*jsoncfg.Object) {
	for i, p := range c.providers {
		for _, l := range p.sources {
			idx := -1
			for j, m := range c.locations {
				if m.kind == l.kind && m.name == l.name && m.prefix == l.prefix {
					idx = j
					break
				}
			}
			if idx < 0 {
				if len(c.locations) == maxLocations {
					provs[i].Errorf("", "more than %d distinct token locations over all providers", maxLocations)
					return
				}
				idx = len(c.locations)
				c.locations = append(c.locations, l)
			}
			c.locations[idx].maxBytes = max(c.locations[idx].maxBytes, p.maxTokenBytes)
			p.locs |= 1 << idx
		}
	}
}

// identityHeaders are owned whatever claim_to_headers says, so that a
// client can never send them upstream through this filter.
var identityHeaders = []string{"x-user-id", "x-user-roles"}

// buildOwnedHeaders lists the identity headers of all providers, and
// refuses one that is also a token source: the wiring strips owned headers
// from incoming requests, in every spelling an upstream may take for them
// ('_' for '-'), which would hide the token.
func (c *config) buildOwnedHeaders(provs []*jsoncfg.Object) {
	c.ownedHeaders = append([]string{}, identityHeaders...)
	for i, p := range c.providers {
		for j, l := range p.sources {
			if l.kind != locHeader {
				continue
			}
			for _, h := range identity.StripList(identityHeaders...) {
				if identity.SameName(l.name, h) {
					// Header sources come first in p.sources, in config order.
					provs[i].Errorf("from_headers["+strconv.Itoa(j)+"].name", "%q is an identity header this filter sets", l.name)
					return
				}
			}
		}
	}
	for i, p := range c.providers {
		if p.forwardPayloadHeader != "" {
			c.addOwnedHeader(provs[i], "forward_payload_header", p.forwardPayloadHeader)
		}
		for j, ch := range p.claimToHeaders {
			c.addOwnedHeader(provs[i], "claim_to_headers["+strconv.Itoa(j)+"].header_name", ch.header)
		}
	}
}

func (c *config) addOwnedHeader(o *jsoncfg.Object, key, h string) {
	for _, l := range c.locations {
		if l.kind == locHeader && identity.SameName(l.name, h) {
			o.Errorf(key, "%q is also where tokens are read from", h)
			return
		}
	}
	if h != "" && !slices.Contains(c.ownedHeaders, h) {
		c.ownedHeaders = append(c.ownedHeaders, h)
	}
}

// parseOverride reads a rule's own keys (rules.Parse calls it once per
// rule): allow_missing, require and providers.
func (c *config) parseOverride(r *jsoncfg.Object) ruleOverride {
	var ov ruleOverride
	ov.allowMissing = r.Bool("allow_missing", false)
	if r.Has("require") {
		ov.require = parseRequire(r)
	}
	if r.Has("providers") {
		names := r.Strings("providers", nil)
		if names != nil && len(names) == 0 {
			r.Errorf("providers", "must not be empty")
		}
		ov.providers = []int{}
		for i, name := range names {
			idx := slices.IndexFunc(c.providers, func(p *provider) bool { return p.name == name })
			switch {
			case idx < 0:
				r.Errorf("providers["+strconv.Itoa(i)+"]", "unknown provider %q", name)
			case slices.Contains(ov.providers, idx):
				r.Errorf("providers["+strconv.Itoa(i)+"]", "duplicate %q", name)
			default:
				ov.providers = append(ov.providers, idx)
			}
		}
	}
	return ov
}

// parseRequire reads a rule's `"require": {"claims": {"roles": ["admin"]}}`.
func parseRequire(rule *jsoncfg.Object) requirement {
	var r requirement
	o, ok := rule.Object("require")
	if !ok {
		return r
	}
	o.Known("claims")
	if !o.Has("claims") {
		o.Errorf("claims", "required")
		return r
	}
	cl, ok := o.Object("claims")
	if !ok {
		return r
	}
	names := cl.Keys()
	if len(names) == 0 {
		o.Errorf("claims", "must not be empty")
	}
	for _, name := range names {
		vals := cl.Strings(name, nil)
		if vals != nil && len(vals) == 0 {
			cl.Errorf(name, "must not be empty")
		}
		r.claims = append(r.claims, claimRequirement{name: name, anyOf: vals})
	}
	return r
}

func checkIdentityHeader(o *jsoncfg.Object, key, name string) {
	if !validHeaderName(name) {
		o.Errorf(key, "invalid header name %q", name)
		return
	}
	lower := strings.ToLower(name)
	for _, r := range reservedHeaders {
		if lower == r {
			o.Errorf(key, "%q may not be set from a token", name)
			return
		}
	}
}

// decodeSecret accepts standard or URL-safe base64, padded or not.
func decodeSecret(s string) ([]byte, bool) {
	s = strings.TrimRight(s, "=")
	enc := base64.RawStdEncoding
	if strings.ContainsAny(s, "-_") {
		enc = base64.RawURLEncoding
	}
	b, err := enc.DecodeString(s)
	return b, err == nil
}

// validHeaderName reports whether s is an HTTP field name (RFC 9110 §5.1).
func validHeaderName(s string) bool { return jsoncfg.IsToken(s) }

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
