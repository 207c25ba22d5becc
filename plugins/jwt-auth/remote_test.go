package main

// Remote JWKS through hosttest: callouts to a Go handler standing in for
// the identity provider, shared data across worker VMs, ticks and the
// host clock.

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/concierge-wasm/concierge/hosttest"
)

const jwksPath = "/.well-known/jwks.json"

// remoteCfg has one provider, "idp", whose keys come from cluster "idp":
// 2s fetch timeout, 60s cache_duration, 10s min_refresh.
func remoteCfg(extra string) string {
	return `{"realm":"api"` + extra + `,"providers":[{"name":"idp","issuer":"` + testIssuer + `","audiences":["api"],
		"algorithms":["RS256","ES256","EdDSA"],
		"remote_jwks":{"http_uri":{"uri":"https://idp.example` + jwksPath + `","cluster":"idp","timeout":"2s"},
			"cache_duration":"60s","min_refresh":"10s"}}]}`
}

// fakeIdP serves a JWKS, counting requests; tests change what it answers.
type fakeIdP struct {
	hits   counter
	mu     sync.Mutex
	status int
	body   string
	block  chan struct{} // non-nil: wait for it (or the callout's end) first
	tb     testing.TB
	// path and host are what the fetch must ask for.
	path, host string
}

func newIdP(tb testing.TB, status int, body string) *fakeIdP {
	return &fakeIdP{tb: tb, status: status, body: body, path: jwksPath, host: "idp.example"}
}

func (f *fakeIdP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.hits.add()
	if r.Method != "GET" || r.URL.Path != f.path || r.Host != f.host {
		f.tb.Errorf("IdP got %s %s (host %s), want GET %s (host %s)", r.Method, r.URL.Path, r.Host, f.path, f.host)
	}
	f.mu.Lock()
	status, body, block := f.status, f.body, f.block
	f.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-r.Context().Done():
			return
		}
	}
	w.WriteHeader(status)
	w.Write([]byte(body))
}

func (f *fakeIdP) set(status int, body string) {
	f.mu.Lock()
	f.status, f.body = status, body
	f.mu.Unlock()
}

func jwksOf(keys ...string) string { return `{"keys":[` + strings.Join(keys, ",") + `]}` }

func remoteHost(tb testing.TB, idp *fakeIdP, extraCfg string, opts ...hosttest.Option) *hosttest.Host {
	tb.Helper()
	return newHost(tb, remoteCfg(extraCfg), append([]hosttest.Option{hosttest.Cluster("idp", idp)}, opts...)...)
}

// TestRemoteJWKSOneFetchForAllWorkers: four workers (five VMs with the main
// thread) serve a burst of requests from keys fetched once.
func TestRemoteJWKSOneFetchForAllWorkers(t *testing.T) {
	idp := newIdP(t, 200, testJWKS(t))
	h := remoteHost(t, idp, "", hosttest.Workers(4))
	now := h.Clock().Now()
	var wg sync.WaitGroup
	start := make(chan struct{})
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := range 5 {
				alg := []string{"RS256", "ES256", "EdDSA"}[(g+i)%3]
				if resp := h.Do(get("/api", goodToken(t, alg, now))); resp.Status != 200 {
					t.Errorf("%s request: %v", alg, resp)
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	workers := map[int]bool{}
	for range 8 {
		workers[h.Do(get("/api", goodToken(t, "RS256", now))).Worker] = true
	}
	if len(workers) != 4 {
		t.Errorf("requests were served by workers %v, want all 4", workers)
	}
	wantEqual(t, "IdP hits", idp.hits.get(), 1)
	wantEqual(t, metricFetches, metric(t, h, metricFetches), 1)
	wantEqual(t, metricFailures, metric(t, h, metricFailures), 0)
	v, _, ok := h.SharedData("").Get("jwt-auth/jwt-auth/jwks/idp")
	if !ok || !strings.HasPrefix(string(v), "jwks1 ") || !strings.HasSuffix(string(v), " https://idp.example"+jwksPath+"\n"+testJWKS(t)) {
		t.Errorf("shared data jwt-auth/jwt-auth/jwks/idp = %.80q…, want the JWKS record", v)
	}
	if keys := h.SharedData("").Keys(); len(keys) != 2 || keys[1] != "jwt-auth/jwt-auth/jwks/idp/fetch" {
		t.Errorf("shared data keys = %v, want the record and its fetch state only", keys)
	}
	if logs := h.LogsContaining(`jwks for provider "idp": 5 keys fetched from https://idp.example`); len(logs) != 1 {
		t.Errorf("fetch log lines = %q", logs)
	}
}

// TestRemoteJWKSNamespace: shared data is namespaced by root_id.
func TestRemoteJWKSNamespace(t *testing.T) {
	idp := newIdP(t, 200, testJWKS(t))
	h := remoteHost(t, idp, "", hosttest.RootID("edge"), hosttest.Workers(1))
	wantStatus(t, h.Do(get("/api", goodToken(t, "RS256", h.Clock().Now()))), 200)
	if _, _, ok := h.SharedData("").Get("jwt-auth/edge/jwks/idp"); !ok {
		t.Errorf("shared data keys = %v, want jwt-auth/edge/jwks/idp", h.SharedData("").Keys())
	}
}

// TestRemoteJWKSPausesUntilKeysArrive: a request that needs keys not
// fetched yet is paused, and resumed when they arrive.
func TestRemoteJWKSPausesUntilKeysArrive(t *testing.T) {
	for _, workers := range []int{1, 3} {
		t.Run(strings.Repeat("w", workers), func(t *testing.T) {
			idp := newIdP(t, 200, testJWKS(t))
			idp.block = make(chan struct{})
			h := remoteHost(t, idp, "", hosttest.Workers(workers))
			eventually(t, "the first fetch", func() bool { return idp.hits.get() == 1 })
			var streams []*hosttest.Stream
			for range workers {
				streams = append(streams, h.Stream(get("/api", goodToken(t, "ES256", h.Clock().Now()))).SendHeaders())
			}
			// A request body sent meanwhile is held, then delivered whole.
			post := hosttest.NewRequest("POST", "/api").Header("authorization", "Bearer "+goodToken(t, "EdDSA", h.Clock().Now())).
				BodyChunks([]byte("ab"), []byte("cd"))
			streams = append(streams, h.Stream(post).SendHeaders().SendBody([]byte("ab"), false).SendBody([]byte("cd"), true))
			time.Sleep(20 * time.Millisecond)
			for _, s := range streams {
				if s.Complete() {
					t.Fatal("a request completed before the keys arrived")
				}
				if got := s.Holder(); !strings.Contains(got, `request paused by filter "jwt-auth" at headers`) {
					t.Errorf("Holder() = %q", got)
				}
			}
			close(idp.block)
			for _, s := range streams {
				resp, ok := s.Wait(5 * time.Second)
				if !ok {
					t.Fatalf("request not resumed: %s", s.Holder())
				}
				wantStatus(t, resp, 200)
				wantEqual(t, "x-user-id", resp.Upstream.Header("x-user-id"), "user-1")
				if resp.Upstream.Header(":method") == "POST" {
					wantEqual(t, "upstream body", string(resp.Upstream.Body), "abcd")
				}
			}
			wantEqual(t, "IdP hits", idp.hits.get(), 1)
		})
	}
}

// TestRemoteJWKSSlow: an IdP that does not answer within the fetch timeout
// costs the waiting request a 401, never a pass.
func TestRemoteJWKSSlow(t *testing.T) {
	idp := newIdP(t, 200, testJWKS(t))
	idp.block = make(chan struct{})
	t.Cleanup(func() { close(idp.block) })
	h := remoteHost(t, idp, "", hosttest.Workers(1))
	eventually(t, "the first fetch", func() bool { return idp.hits.get() == 1 })
	s := h.Stream(get("/api", goodToken(t, "RS256", h.Clock().Now()))).SendHeaders()
	time.Sleep(10 * time.Millisecond)
	if s.Complete() {
		t.Fatal("the request did not wait for the keys")
	}
	h.Clock().Advance(3 * time.Second)
	resp, ok := s.Wait(5 * time.Second)
	if !ok {
		t.Fatalf("request still held after the fetch timeout: %s", s.Holder())
	}
	wantDenied(t, resp, 401, "keys unavailable", invalid("keys unavailable"))
	eventually(t, "the failure to be counted", func() bool { return metric(t, h, metricFailures) >= 1 })
	if logs := h.LogsContaining(`jwks fetch for provider "idp" from https://idp.example/.well-known/jwks.json failed: status 504; no keys to serve`); len(logs) == 0 {
		t.Errorf("no failure log; logs: %q", h.LogsContaining("jwks"))
	}
	wantEqual(t, reasonMetric(errKeysUnavailable), metric(t, h, reasonMetric(errKeysUnavailable)), 1)
}

// TestRemoteJWKSFailingAndGarbage: an IdP that fails or answers garbage
// gets the request a 401 (never a pass), a counted failure and a log line;
// once it recovers, the next fetch after the backoff serves.
func TestRemoteJWKSFailingAndGarbage(t *testing.T) {
	for _, tc := range []struct {
		name, body, log string
		status          int
	}{
		{"failing", "internal error", "failed: status 500", 500},
		{"garbage", "<html>hello</html>", "failed: invalid JWKS: invalid JSON", 200},
		{"no usable key", jwksOf(ecJWK(&testKeys(t).p384.PublicKey, "p384")), "failed: invalid JWKS: no key fits the provider's algorithms", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			idp := newIdP(t, tc.status, tc.body)
			h := remoteHost(t, idp, "", hosttest.Workers(1))
			eventually(t, "the first failure", func() bool { return metric(t, h, metricFailures) >= 1 })
			resp := h.Do(get("/api", goodToken(t, "RS256", h.Clock().Now())))
			wantDenied(t, resp, 401, "keys unavailable", invalid("keys unavailable"))
			if logs := h.LogsContaining(tc.log); len(logs) == 0 {
				t.Errorf("no log line with %q; logs: %q", tc.log, h.LogsContaining("jwks"))
			}
			idp.set(200, testJWKS(t))
			h.Clock().Advance(2 * time.Second) // past the backoff
			eventually(t, "a fetch that succeeds", func() bool {
				return h.Do(get("/api", goodToken(t, "RS256", h.Clock().Now()))).Status == 200
			})
		})
	}
}

// TestRemoteJWKSUnreachableCluster: a cluster the host does not know is a
// refused dispatch: counted, logged, and a 401.
func TestRemoteJWKSUnreachableCluster(t *testing.T) {
	h := newHost(t, remoteCfg(""), hosttest.Workers(1))
	eventually(t, "the refused fetch", func() bool { return metric(t, h, metricFailures) >= 1 })
	resp := h.Do(get("/api", goodToken(t, "RS256", h.Clock().Now())))
	wantDenied(t, resp, 401, "keys unavailable", invalid("keys unavailable"))
	if logs := h.LogsContaining(`cannot dispatch to cluster "idp"`); len(logs) == 0 {
		t.Errorf("no log of the refused dispatch; logs: %q", h.LogsContaining("jwks"))
	}
	// The cluster the configuration names does not exist: an error that
	// says which field to mend, not only a warning about one fetch.
	found := false
	for _, l := range h.Logs() {
		found = found || l.Level.String() == "error" && strings.Contains(l.Message, `remote_jwks.http_uri.cluster "idp" names no cluster of this proxy`)
	}
	if !found {
		t.Errorf("no error-level log naming remote_jwks.http_uri.cluster; logs: %q", h.LogsContaining("jwt-auth"))
	}
}

// TestRemoteJWKSRotation: a token with a kid the cached set lacks triggers
// one early refresh, which brings the new key; another unknown kid within
// min_refresh is refused without a fetch.
func TestRemoteJWKSRotation(t *testing.T) {
	k := testKeys(t)
	idp := newIdP(t, 200, jwksOf(rsaJWK(&k.rsa.PublicKey, "key-a")))
	h := remoteHost(t, idp, "", hosttest.Workers(2))
	now := h.Clock().Now()
	signed := func(key *rsa.PrivateKey, kid string) string {
		return signToken(t, "RS256", key, map[string]any{"alg": "RS256", "kid": kid}, claimsAt(now, nil))
	}
	wantStatus(t, h.Do(get("/api", signed(k.rsa, "key-a"))), 200)
	wantEqual(t, "IdP hits", idp.hits.get(), 1)

	// The IdP rotates: key-b is added.
	idp.set(200, jwksOf(rsaJWK(&k.rsa.PublicKey, "key-a"), rsaJWK(&k.rsaOther.PublicKey, "key-b")))
	for range 4 { // on both workers
		wantStatus(t, h.Do(get("/api", signed(k.rsaOther, "key-b"))), 200)
	}
	wantEqual(t, "IdP hits after the rotation", idp.hits.get(), 2)
	wantStatus(t, h.Do(get("/api", signed(k.rsa, "key-a"))), 200)

	// A kid nobody has: refused at once, without a fetch, within min_refresh…
	h.Clock().Advance(5 * time.Second)
	wantDenied(t, h.Do(get("/api", signed(k.rsaOther, "key-x"))), 401, "unknown key", invalid("unknown key"))
	wantEqual(t, "IdP hits (unknown kid within min_refresh)", idp.hits.get(), 2)
	// …and after min_refresh, one more refresh, which does not have it either.
	h.Clock().Advance(6 * time.Second)
	wantDenied(t, h.Do(get("/api", signed(k.rsaOther, "key-x"))), 401, "unknown key", invalid("unknown key"))
	wantEqual(t, "IdP hits (unknown kid after min_refresh)", idp.hits.get(), 3)
}

// TestRemoteJWKSRefreshFailureServesLastGoodSet: when the IdP goes down,
// the last good keys serve until 2 × cache_duration, then requests get 401
// until it is back.
func TestRemoteJWKSRefreshFailureServesLastGoodSet(t *testing.T) {
	idp := newIdP(t, 200, testJWKS(t))
	h := remoteHost(t, idp, "", hosttest.Workers(1))
	token := func() string {
		// Tokens are made for the current host time: they never expire
		// under the test's feet.
		return goodToken(t, "EdDSA", h.Clock().Now())
	}
	wantStatus(t, h.Do(get("/api", token())), 200)
	wantEqual(t, "IdP hits", idp.hits.get(), 1)

	idp.set(503, "down")
	h.Clock().Advance(61 * time.Second) // past cache_duration: refreshes start, and fail
	eventually(t, "a failed refresh", func() bool { return metric(t, h, metricFailures) >= 1 })
	wantStatus(t, h.Do(get("/api", token())), 200)
	if logs := h.LogsContaining(`failed: status 503; serving the keys fetched at`); len(logs) == 0 {
		t.Errorf("no log of serving the last good set; logs: %q", h.LogsContaining("jwks"))
	}
	h.Clock().Advance(58 * time.Second) // 119 s after the fetch
	wantStatus(t, h.Do(get("/api", token())), 200)

	h.Clock().Advance(2 * time.Second) // 121 s: the set is stale
	resp := h.Do(get("/api", token()))
	wantDenied(t, resp, 401, "keys unavailable", invalid("keys unavailable"))
	if logs := h.LogsContaining("are older than 2 x cache_duration and no refresh succeeded: dropped"); len(logs) == 0 {
		t.Errorf("no log of dropping the stale keys; logs: %q", h.LogsContaining("jwks"))
	}
	failures := metric(t, h, metricFailures)
	if failures < 2 {
		t.Errorf("%s = %d, want several failed refreshes", metricFailures, failures)
	}

	idp.set(200, testJWKS(t))
	h.Clock().Advance(10 * time.Second) // the backoff is capped at min_refresh
	eventually(t, "the IdP's recovery to be seen", func() bool {
		return h.Do(get("/api", token())).Status == 200
	})
}

// TestRemoteJWKSUnusableKey: one key the filter cannot use in the IdP's
// set (an X25519 key without "use", a secp256k1 key, an RSA-1024 key) is
// skipped with a warning and a count, and tokens of the good keys pass on
// every worker; a set of unusable keys only serves nothing: 401 "keys
// unavailable", with the same warnings and a failed fetch.
func TestRemoteJWKSUnusableKey(t *testing.T) {
	k := testKeys(t)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	x, y := ecCoords(&k.p256.PublicKey)
	unusable := []struct{ name, jwk, log string }{
		{"X25519", `{"kty":"OKP","crv":"X25519","kid":"enc-x","x":"` + b64(make([]byte, 32)) + `"}`,
			`keys[0] (kid "enc-x"): crv: unsupported curve "X25519"`},
		{"secp256k1", `{"kty":"EC","crv":"secp256k1","kid":"k1","x":"` + x + `","y":"` + y + `"}`,
			`keys[0] (kid "k1"): crv: unsupported curve "secp256k1"`},
		{"RSA-1024", rsaJWK(&small.PublicKey, "old"), `keys[0] (kid "old"): n: modulus of 1024 bits, need 2048 to 8192`},
	}
	for _, u := range unusable {
		t.Run(u.name, func(t *testing.T) {
			idp := newIdP(t, 200, jwksOf(u.jwk, rsaJWK(&k.rsa.PublicKey, "rsa-1"), edJWK(k.ed.Public().(ed25519.PublicKey), "ed-1")))
			h := remoteHost(t, idp, "", hosttest.Workers(2))
			for range 4 { // on both workers: the second takes the record up from shared data
				wantStatus(t, h.Do(get("/api", goodToken(t, "RS256", h.Clock().Now()))), 200)
				wantStatus(t, h.Do(get("/api", goodToken(t, "EdDSA", h.Clock().Now()))), 200)
			}
			wantEqual(t, "IdP hits", idp.hits.get(), 1)
			wantEqual(t, metricKeysSkipped, metric(t, h, metricKeysSkipped), 1)
			wantEqual(t, metricFailures, metric(t, h, metricFailures), 0)
			want := `jwks for provider "idp" from https://idp.example` + jwksPath + `: unusable key skipped: ` + u.log
			if logs := h.LogsContaining(want); len(logs) != 1 {
				t.Errorf("log lines %q = %q; all: %q", want, logs, h.LogsContaining("jwks"))
			}
		})
	}
	t.Run("only unusable keys", func(t *testing.T) {
		idp := newIdP(t, 200, jwksOf(unusable[0].jwk, unusable[1].jwk))
		h := remoteHost(t, idp, "", hosttest.Workers(1))
		eventually(t, "the failed fetch", func() bool { return metric(t, h, metricFailures) >= 1 })
		resp := h.Do(get("/api", goodToken(t, "RS256", h.Clock().Now())))
		wantDenied(t, resp, 401, "keys unavailable", invalid("keys unavailable"))
		wantEqual(t, metricKeysSkipped, metric(t, h, metricKeysSkipped), 2)
		for _, want := range []string{
			`unusable key skipped: keys[1] (kid "k1"): crv: unsupported curve "secp256k1"`,
			`failed: invalid JWKS: keys: no usable signature verification key (2 unusable skipped); no keys to serve`,
		} {
			if logs := h.LogsContaining(want); len(logs) != 1 {
				t.Errorf("log lines %q = %q; all: %q", want, logs, h.LogsContaining("jwks"))
			}
		}
	})
}
