package main

// The compiled module in hosttest.

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/concierge-wasm/concierge/hosttest"
)

// TestWasmAllow: a valid key passes; the upstream gets the consumer and
// its permissions, and not the key.
func TestWasmAllow(t *testing.T) {
	h := newHost(t, testConfig(""))
	for _, tc := range []struct {
		key, consumer, perms string
	}{
		{acmeKey, "acme", "read"},
		{globexKey, "globex", "read,write"},
		{adminKey, "ops", "read,write,admin"},
	} {
		resp := h.Do(withKey("/api", tc.key).Header("accept", "*/*"))
		wantStatus(t, resp, 200)
		up := resp.Upstream
		wantEqual(t, "x-consumer", up.Header("x-consumer"), tc.consumer)
		wantEqual(t, "x-consumer-permissions", up.Header("x-consumer-permissions"), tc.perms)
		wantEqual(t, "accept", up.Header("accept"), "*/*")
		if up.Has("x-api-key") {
			t.Errorf("the key reached the upstream (hide_credentials is true)")
		}
	}
	wantEqual(t, metricAllowed, metric(t, h, metricAllowed), 3)
	wantEqual(t, "acme's counter", metric(t, h, consumerMetric("acme")), 1)
	if _, ok := h.Metric(consumerMetric("nobody")); ok {
		t.Errorf("a counter for an unconfigured consumer exists")
	}
	// hide_credentials false keeps the key.
	h = newHost(t, testConfig(`,"hide_credentials":false`))
	resp := h.Do(withKey("/api", acmeKey))
	wantStatus(t, resp, 200)
	wantEqual(t, "x-api-key", resp.Upstream.Header("x-api-key"), acmeKey)
}

// TestWasmQueryParam: a key in the query is taken out of :path, every
// other byte of which reaches the upstream unchanged.
func TestWasmQueryParam(t *testing.T) {
	h := newHost(t, testConfig(`,"query_param":"apikey"`))
	resp := h.Do(hosttest.GET("/api/a%2Fb?x=1&apikey=" + globexKey + "&y=%41+b&&z"))
	wantStatus(t, resp, 200)
	wantEqual(t, "upstream :path", resp.Upstream.Path(), "/api/a%2Fb?x=1&y=%41+b&&z")
	wantEqual(t, "x-consumer", resp.Upstream.Header("x-consumer"), "globex")
	resp = h.Do(hosttest.GET("/api?apikey=" + acmeKey))
	wantStatus(t, resp, 200)
	wantEqual(t, "upstream :path", resp.Upstream.Path(), "/api")
	// The header still works beside the parameter; both at once is refused.
	wantStatus(t, h.Do(withKey("/api?x=1", acmeKey)), 200)
	wantDenied(t, h.Do(withKey("/api?apikey="+acmeKey, acmeKey)), 401, msgInvalid, "Key")

	h = newHost(t, testConfig(`,"query_param":"apikey","hide_credentials":false`))
	resp = h.Do(hosttest.GET("/api?apikey=" + acmeKey + "&x"))
	wantStatus(t, resp, 200)
	wantEqual(t, "upstream :path", resp.Upstream.Path(), "/api?apikey="+acmeKey+"&x")
}

// TestWasmDenials: no key, and every kind of bad key, each with its one
// client-facing answer; the finer reason only in metrics.
func TestWasmDenials(t *testing.T) {
	now := time.Now()
	cfg := `{"realm":"partners","consumers":[
		{"name":"acme","permissions":["read"],"keys":[{"key_sha256":"` + digest(acmeKey) + `"}]},
		{"name":"old","keys":[{"key":"old-key-1","not_after":"` + rfc3339(now.Add(-time.Hour)) + `"}]},
		{"name":"new","keys":[{"key":"new-key-1","not_before":"` + rfc3339(now.Add(time.Hour)) + `"}]}]}`
	h := newHost(t, cfg)
	challenge := `Key realm="partners"`
	tests := []struct {
		name   string
		req    *hosttest.Request
		status int
		msg    string
		slug   string
	}{
		{"no key", withKey("/api", ""), 401, msgMissing, "missing_key"},
		{"empty key", withKey("/api", "").Header("x-api-key", ""), 401, msgMissing, "missing_key"},
		{"unknown", withKey("/api", "guess"), 401, msgInvalid, "unknown_key"},
		{"the digest itself", withKey("/api", digest(acmeKey)), 401, msgInvalid, "unknown_key"},
		{"expired", withKey("/api", "old-key-1"), 401, msgInvalid, "expired_key"},
		{"not yet valid", withKey("/api", "new-key-1"), 401, msgInvalid, "key_not_yet_valid"},
		{"two keys", withKey("/api", acmeKey).Header("x-api-key", acmeKey), 401, msgInvalid, "malformed_key"},
		{"oversized", withKey("/api", strings.Repeat("k", 2000)), 401, msgInvalid, "malformed_key"},
		{"no permission", keyed(hosttest.POST("/api", "{}"), acmeKey), 403, msgPermission, "permission_denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := metric(t, h, metricPrefix+"denied_"+tt.slug+"_total")
			resp := h.Do(tt.req)
			ch := challenge
			if tt.status == 403 {
				ch = ""
			}
			wantDenied(t, resp, tt.status, tt.msg, ch)
			wantEqual(t, "reason counter", metric(t, h, metricPrefix+"denied_"+tt.slug+"_total"), before+1)
		})
	}
	wantEqual(t, metricDenied, metric(t, h, metricDenied), int64(len(tests)))
	// Logs name the key by its place, never by its value.
	for _, l := range h.Logs() {
		for _, secret := range []string{acmeKey, "old-key-1", "new-key-1", "guess"} {
			if strings.Contains(l.Message, secret) {
				t.Errorf("log line %q holds a key", l.Message)
			}
		}
	}
	if got := h.LogsContaining(`reason=expired_key request_id="req-1" consumer="old" key=consumers[1].keys[0]`); len(got) != 1 {
		t.Errorf("expired-key log lines = %q, want one naming consumers[1].keys[0]", got)
	}
}

// TestWasmRotation: two keys of one consumer overlap during a rotation;
// each is accepted exactly inside its window, measured on the host clock.
func TestWasmRotation(t *testing.T) {
	start := time.Now().Truncate(time.Second)
	nb := start.Add(time.Hour)
	na := start.Add(2 * time.Hour)
	h := newHost(t, `{"consumers":[{"name":"acme","permissions":["read"],"keys":[
		{"key_sha256":"`+digest(acmeKey)+`","not_after":"`+rfc3339(na)+`"},
		{"key_sha256":"`+digest(acmeNewKey)+`","not_before":"`+rfc3339(nb)+`"}]}]}`)
	clock := h.Clock()
	// advanceTo moves the host clock to t (it only moves forward, and
	// real time keeps running: "before" edges keep a second's margin, and
	// "at" edges are reached or just passed).
	advanceTo := func(at time.Time) { clock.Advance(at.Sub(clock.Now())) }
	steps := []struct {
		at          time.Time
		old, newKey int
	}{
		{start, 200, 401},
		{nb.Add(-time.Second), 200, 401},
		{nb, 200, 200},
		{na.Add(-time.Second), 200, 200},
		{na, 401, 200},
		{na.Add(24 * time.Hour), 401, 200},
	}
	for _, s := range steps {
		if s.at.After(clock.Now()) {
			advanceTo(s.at)
		}
		for _, k := range []struct {
			key  string
			want int
		}{{acmeKey, s.old}, {acmeNewKey, s.newKey}} {
			resp := h.Do(withKey("/api", k.key))
			if resp.Status != k.want {
				t.Errorf("at %s (+%s): key %s… = %d, want %d", s.at.Format(time.RFC3339), s.at.Sub(start), k.key[:12], resp.Status, k.want)
			}
			if k.want == 401 {
				wantDenied(t, resp, 401, msgInvalid, "Key")
			}
		}
	}
	wantEqual(t, "expired", metric(t, h, reasonMetric(reasonExpired)), 2)
	wantEqual(t, "not yet valid", metric(t, h, reasonMetric(reasonNotYetValid)), 2)
}

// TestWasmSpoofedIdentityHeaders: identity headers a client sends never
// reach the upstream, whatever the route and outcome, and rules never
// match on them.
func TestWasmSpoofedIdentityHeaders(t *testing.T) {
	cfg := testConfig(`,"permissions_header":"x-partner-perms","rules":[
		{"match":{"prefix":"/public"},"enabled":false},
		{"match":{"prefix":"/open"},"allow_missing":true},
		{"match":{"prefix":"/shadow"},"shadow":true},
		{"match":{"headers":[{"name":"x-consumer","present":true}]},"enabled":false}]`)
	h := hosttest.New(t, hosttest.Chain(
		hosttest.Filter{Name: "key-auth", Plugin: ".", Config: cfg},
		hosttest.Filter{Name: "reader", Plugin: identityReader},
	))
	spoof := func(r *hosttest.Request) *hosttest.Request {
		return r.Header("x-consumer", "ops").Header("X-Consumer", "ops2").Header("x-partner-perms", "admin").
			Header("x-user-id", "root").Header("x-user-roles", "admin").Header("x-consumer-permissions", "admin").
			// Spellings that CGI, WSGI and Rack servers read as the same headers.
			Header("x_consumer", "ops3").Header("X_User_Id", "root").Header("x-user_roles", "admin").
			Header("x_partner_perms", "admin").Header("x_consumer_permissions", "admin")
	}
	tests := []struct {
		name, path, key string
		status          int
		consumer, perms string
		identity        string
	}{
		{"allowed", "/api", acmeKey, 200, "acme", "read", `{"v":1,"m":"key-auth","s":"acme","c":"acme","r":["read"]}`},
		{"public route", "/public", "", 200, "", "", "none"},
		{"anonymous", "/open", "", 200, "", "", "none"},
		{"shadow denial", "/shadow", "guess", 200, "", "", "none"},
		{"denied", "/api", "guess", 401, "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := h.Do(spoof(withKey(tt.path, tt.key)))
			wantStatus(t, resp, tt.status)
			if resp.Upstream == nil {
				return
			}
			up := resp.Upstream
			wantEqual(t, "x-consumer values", strings.Join(up.HeaderValues("x-consumer"), ","), tt.consumer)
			wantEqual(t, "x-partner-perms", strings.Join(up.HeaderValues("x-partner-perms"), ","), tt.perms)
			for _, h := range []string{"x-user-id", "x-user-roles", "x_consumer", "x_user_id", "x-user_roles", "x_partner_perms", "x_consumer_permissions"} {
				if up.Has(h) {
					t.Errorf("spoofed %s reached the upstream: %q", h, up.Header(h))
				}
			}
			wantEqual(t, "identity property", up.Header("x-identity"), tt.identity)
		})
	}
}

// TestWasmSpoofedReject: with "spoofed_identity_headers": "reject" a
// request carrying an identity header of its own, in any spelling, gets
// 400 (shadow: let through without it); trailers are stripped, never
// answered, since the request is already on its way.
func TestWasmSpoofedReject(t *testing.T) {
	h := newHost(t, testConfig(`,"spoofed_identity_headers":"reject","rules":[{"match":{"prefix":"/shadow"},"shadow":true}]`))
	wantDenied(t, h.Do(withKey("/api", acmeKey).Header("x_consumer", "ops")), 400, msgSpoofed, "")
	wantEqual(t, metricDenied+" spoofed", metric(t, h, reasonMetric(reasonSpoofed)), 1)
	resp := h.Do(withKey("/shadow/x", acmeKey).Header("X_User_Id", "root"))
	wantStatus(t, resp, 200)
	if resp.Upstream.Has("x_user_id") {
		t.Errorf("shadow: the spoofed header reached the upstream")
	}
	resp = h.Do(withKey("/api", acmeKey).Trailer("x_consumer", "ops").Trailer("x-user-id", "root").Trailer("x-checksum", "1"))
	wantStatus(t, resp, 200)
	for _, tr := range resp.Upstream.Trailers {
		if tr.Key != "x-checksum" {
			t.Errorf("trailer %s reached the upstream", tr.Key)
		}
	}
	if _, err := parseConfig([]byte(testConfig(`,"spoofed_identity_headers":"drop"`))); err == nil {
		t.Errorf("spoofed_identity_headers: \"drop\" was accepted")
	}
}

// TestWasmRules: per-route requirements, allow_missing and shadow, and the
// method → permission map.
func TestWasmRules(t *testing.T) {
	h := newHost(t, testConfig(`,"rules":[
		{"match":{"prefix":"/admin"},"require":["admin"]},
		{"match":{"prefix":"/maybe"},"allow_missing":true},
		{"match":{"prefix":"/trial"},"shadow":true}]`))
	wantDenied(t, h.Do(withKey("/admin/x", globexKey)), 403, msgPermission, "")
	wantStatus(t, h.Do(withKey("/admin/x", adminKey)), 200)
	wantDenied(t, h.Do(withKey("/admin/x", "")), 401, msgMissing, "Key")
	// A rule's prefix does not open a path that normalizes elsewhere.
	wantDenied(t, h.Do(withKey("/maybe/../api", "")), 401, msgMissing, "Key")

	resp := h.Do(withKey("/maybe/x", ""))
	wantStatus(t, resp, 200)
	wantEqual(t, metricAnonymous, metric(t, h, metricAnonymous), 1)
	wantEqual(t, "x-consumer (anonymous)", resp.Upstream.Header("x-consumer"), "")
	// allow_missing covers a missing key only, never a bad one.
	wantDenied(t, h.Do(withKey("/maybe/x", "guess")), 401, msgInvalid, "Key")
	wantEqual(t, "x-consumer", h.Do(withKey("/maybe/x", acmeKey)).Upstream.Header("x-consumer"), "acme")

	// Shadow: decided, logged and counted, let through, without identity,
	// the key left where it was.
	h.ClearLogs()
	resp = h.Do(keyed(hosttest.POST("/trial/x", "{}"), acmeKey))
	wantStatus(t, resp, 200)
	wantEqual(t, metricShadowed, metric(t, h, metricShadowed), 1)
	wantEqual(t, "x-consumer (shadow)", resp.Upstream.Header("x-consumer"), "")
	wantEqual(t, "x-api-key (shadow)", resp.Upstream.Header("x-api-key"), acmeKey)
	if got := h.LogsContaining("shadow: would deny status=403 reason=permission_denied"); len(got) != 1 {
		t.Errorf("shadow log lines = %q, want one", got)
	}
	wantStatus(t, h.Do(withKey("/trial/x", "")), 200)

	// A custom method map: DELETE needs "admin", everything else nothing.
	h = newHost(t, testConfig(`,"permission_by_method":{"DELETE":"admin","*":""}`))
	wantStatus(t, h.Do(keyed(hosttest.POST("/x", "{}"), acmeKey)), 200)
	wantDenied(t, h.Do(keyed(hosttest.NewRequest("DELETE", "/x"), globexKey)), 403, msgPermission, "")
	wantStatus(t, h.Do(keyed(hosttest.NewRequest("DELETE", "/x"), adminKey)), 200)
}

// TestWasmProblemJSON: error_format switches denials to RFC 9457.
func TestWasmProblemJSON(t *testing.T) {
	h := newHost(t, testConfig(`,"error_format":"problem+json"`))
	for _, tc := range []struct {
		req    *hosttest.Request
		status int
		title  string
		detail string
	}{
		{withKey("/api", ""), 401, "Unauthorized", msgMissing},
		{withKey("/api", "guess"), 401, "Unauthorized", msgInvalid},
		{keyed(hosttest.POST("/api", "{}"), acmeKey), 403, "Forbidden", msgPermission},
	} {
		resp := h.Do(tc.req)
		wantStatus(t, resp, tc.status)
		wantEqual(t, "content-type", resp.Header("content-type"), "application/problem+json")
		var p struct {
			Type, Title, Detail, RequestID string
			Status                         int
		}
		if err := json.Unmarshal(resp.Body, &p); err != nil {
			t.Fatalf("body %q: %v", resp.Body, err)
		}
		if p.Type != "about:blank" || p.Title != tc.title || p.Status != tc.status || p.Detail != tc.detail || p.RequestID != "req-1" {
			t.Errorf("problem = %+v, want %s %d %q with requestId req-1", p, tc.title, tc.status, tc.detail)
		}
	}
}

// TestWasmBadConfigRefused: the host refuses to start the filter, and the
// plugin says why in one line naming the field.
func TestWasmBadConfigRefused(t *testing.T) {
	d := digest(acmeKey)
	for _, tc := range []struct{ config, want string }{
		{``, `consumers: required`},
		{`{"consumers":[],"headr":"x"}`, `unknown field "headr"`},
		{`{"consumers":[{"name":"a","keys":[{"key_sha256":"abc"}]}]}`, `consumers[0].keys[0].key_sha256: must be 64 hex digits (printf %s "$KEY" | sha256sum), got 3 characters`},
		{`{"consumers":[{"name":"a","keys":[{"key_sha256":"` + d + `"}]},{"name":"b","keys":[{"key":"` + acmeKey + `"}]}]}`,
			`consumers[1].keys[0]: duplicate key: the same key as consumers[0].keys[0] (consumer "a")`},
		{`{"consumers":[{"name":"a","keys":[{"key":"k","not_after":"tomorrow"}]}]}`, `consumers[0].keys[0].not_after: must be an RFC 3339 time like "2026-01-31T00:00:00Z", got "tomorrow"`},
		{`{"consumers":[{"name":"a","keys":[{"key":"k"}]}],"permission_by_method":{"GET":"read"}}`, `permission_by_method: needs a "*" entry: the permission of every method not listed`},
	} {
		h, err := hosttest.Start(hosttest.Plugin("."), hosttest.Config(tc.config), hosttest.Workers(1))
		if err == nil {
			h.Close()
			t.Errorf("Start(%s) succeeded, want refusal %s", tc.config, tc.want)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, "refused to start") || !strings.Contains(msg, "[error] "+tc.want) {
			t.Errorf("Start(%s) = %v\nwant the log line %q", tc.config, err, tc.want)
		}
		if strings.Contains(err.Error(), acmeKey) {
			t.Errorf("Start(%s) error quotes a plaintext key", tc.config)
		}
	}
}

// TestWasmPlaintextWarning: plaintext keys work and are warned about at
// start, by place, never by value.
func TestWasmPlaintextWarning(t *testing.T) {
	h := newHost(t, `{"consumers":[{"name":"dev","permissions":["read"],"keys":[{"key":"dev-secret-1"},{"key_sha256":"`+digest(acmeKey)+`"},{"key":"dev-secret-2"}]}]}`)
	wantStatus(t, h.Do(withKey("/", "dev-secret-2")), 200)
	warn := h.LogsContaining("plaintext key")
	if len(warn) == 0 {
		t.Fatal("no start-up warning about plaintext keys")
	}
	wantEqual(t, "warning", warn[0], `2 plaintext key(s) in the configuration (consumers[0].keys[0], consumers[0].keys[2]); use key_sha256 outside development`)
	for _, l := range h.Logs() {
		if strings.Contains(l.Message, "dev-secret") {
			t.Errorf("log line %q holds a key", l.Message)
		}
	}
	for _, m := range h.Metrics() {
		if strings.Contains(m.Name, "dev-secret") {
			t.Errorf("metric %q holds a key", m.Name)
		}
	}
}
