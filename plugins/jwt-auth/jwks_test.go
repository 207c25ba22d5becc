package main

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// fakeStore is shared data with Envoy's rules: one global CAS counter, a
// non-zero CAS must match for an existing key, a new key ignores it.
type fakeStore struct {
	cas uint32
	m   map[string]fakeEntry
	// conflicts makes the next n conditional writes fail with a mismatch,
	// as if another VM had just written.
	conflicts int
}

type fakeEntry struct {
	v   []byte
	cas uint32
}

func newFakeStore() *fakeStore { return &fakeStore{m: map[string]fakeEntry{}} }

// fakeVM is one VM's host: the shared store, the callouts it dispatched,
// and what it logged and counted.
type fakeVM struct {
	st          *fakeStore
	calls       []fakeCall
	counts      map[jwksEvent]int
	logs        []string
	dispatchErr error
}

type fakeCall struct {
	r    *remoteJWKS
	done func(int, []byte)
}

func (f *fakeVM) sharedGet(key string) ([]byte, uint32, bool) {
	e, ok := f.st.m[key]
	return e.v, e.cas, ok
}

func (f *fakeVM) sharedSet(key string, v []byte, cas uint32) (bool, error) {
	e, ok := f.st.m[key]
	if ok && cas != 0 {
		if f.st.conflicts > 0 {
			f.st.conflicts--
			return true, nil
		}
		if cas != e.cas {
			return true, nil
		}
	}
	f.st.cas++
	f.st.m[key] = fakeEntry{v: append([]byte{}, v...), cas: f.st.cas}
	return false, nil
}

func (f *fakeVM) httpGet(r *remoteJWKS, done func(int, []byte)) error {
	if f.dispatchErr != nil {
		return f.dispatchErr
	}
	f.calls = append(f.calls, fakeCall{r, done})
	return nil
}

func (f *fakeVM) note(e jwksEvent, msg string) {
	if f.counts == nil {
		f.counts = map[jwksEvent]int{}
	}
	f.counts[e]++
	if msg != "" {
		f.logs = append(f.logs, msg)
	}
}

// answer completes the VM's oldest outstanding callout.
func (f *fakeVM) answer(tb testing.TB, status int, body string) {
	tb.Helper()
	if len(f.calls) == 0 {
		tb.Fatal("answer: no callout outstanding")
	}
	c := f.calls[0]
	f.calls = f.calls[1:]
	c.done(status, []byte(body))
}

const remoteTestURI = "https://idp.example/jwks"

// remoteConfig is one remote provider (EdDSA and RS256 keys from the IdP)
// plus an HMAC provider, with a 60s cache and 10s min_refresh.
func remoteConfig(tb testing.TB) *config {
	return mustConfig(tb, `{"providers":[
		{"name":"idp","issuer":"`+testIssuer+`","algorithms":["RS256","EdDSA"],
		 "remote_jwks":{"http_uri":{"uri":"`+remoteTestURI+`","cluster":"idp","timeout":"2s"},"cache_duration":"60s","min_refresh":"10s"}},
		{"name":"hmac","issuer":"`+testHMACIssuer+`","algorithms":["HS256"],"hmac_secret":"`+testSecret+`"}]}`)
}

// testVM is a manager on a fake VM with its own clock.
type testVM struct {
	*fakeVM
	m   *jwksManager
	v   *verifier
	now time.Time
}

func newTestVM(tb testing.TB, cfg *config, st *fakeStore, owner uint64, now time.Time) *testVM {
	vm := &testVM{fakeVM: &fakeVM{st: st}, now: now}
	vm.v = newVerifier(cfg)
	vm.m = newJWKSManager(cfg, vm.v, vm.fakeVM, func() time.Time { return vm.now }, "jwt-auth", owner)
	vm.m.start(now)
	return vm
}

func (vm *testVM) tick() []bool { return vm.m.tick(vm.now) }

func TestJWKSRecords(t *testing.T) {
	at := time.Unix(1900000000, 123)
	rec := encodeJWKSRecord(at, remoteTestURI, []byte(`{"keys":[]}`+"\n"))
	got, err := decodeJWKSRecord(rec)
	if err != nil || !got.fetchedAt.Equal(at) || got.uri != remoteTestURI || string(got.body) != `{"keys":[]}`+"\n" {
		t.Errorf("decodeJWKSRecord(encode) = %+v, %v", got, err)
	}
	st := fetchState{owner: 0xabc, leaseUntil: at, nextAttempt: at.Add(time.Second), failures: 3}
	if got, err := decodeFetchState(st.encode()); err != nil || got != st {
		t.Errorf("decodeFetchState(%s) = %+v, %v; want %+v", st.encode(), got, err, st)
	}
	if got, err := decodeFetchState(fetchState{}.encode()); err != nil || got != (fetchState{}) {
		t.Errorf("decodeFetchState(zero) = %+v, %v", got, err)
	}
	for _, bad := range []string{"", "jwks1", "jwks1 x uri\n{}", "jwks2 1 uri\n{}", "jwks1 1\n{}", "fetch1 1 2 3", "fetch1 zz 0 0 0 0", "fetch1 1 0 0 0 -1"} {
		_, e1 := decodeJWKSRecord([]byte(bad))
		_, e2 := decodeFetchState([]byte(bad))
		if e1 == nil && e2 == nil {
			t.Errorf("decoding %q succeeded", bad)
		}
	}
}

func TestBackoff(t *testing.T) {
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 5: 10 * time.Second, 40: 10 * time.Second} {
		if got := backoff(n, 10*time.Second); got != want {
			t.Errorf("backoff(%d, 10s) = %v, want %v", n, got, want)
		}
	}
}

// TestJWKSOneFetchForAllVMs: of several VMs ticking at once, one takes the
// lease and fetches; the others take the keys from shared data.
func TestJWKSOneFetchForAllVMs(t *testing.T) {
	cfg := remoteConfig(t)
	st := newFakeStore()
	now := testNow
	var vms []*testVM
	for i := range 4 {
		vms = append(vms, newTestVM(t, cfg, st, uint64(i+1), now))
	}
	for _, vm := range vms {
		if !vm.m.wantsFetch() {
			t.Fatal("a VM without keys does not ask for a fetch at start")
		}
		vm.tick()
	}
	total := 0
	for _, vm := range vms {
		total += len(vm.calls)
	}
	if total != 1 || len(vms[0].calls) != 1 {
		t.Fatalf("dispatched %d fetches (VM 0: %d), want exactly 1 by the first VM to tick", total, len(vms[0].calls))
	}
	if c := vms[0].calls[0].r; c.cluster != "idp" || c.authority != "idp.example" || c.path != "/jwks" {
		t.Errorf("fetch went to %+v", c)
	}
	for _, vm := range vms[1:] {
		if !vm.m.busy(0, now) {
			t.Error("another VM does not see the fetch under way")
		}
	}
	vms[0].answer(t, 200, testJWKS(t))
	if vms[0].v.remoteKeys(0) == nil || vms[0].counts[evFetchStarted] != 1 || vms[0].counts[evFetchFailed] != 0 {
		t.Fatalf("after the answer: keys %v, counts %v", vms[0].v.remoteKeys(0), vms[0].counts)
	}
	now = now.Add(time.Second)
	for _, vm := range vms[1:] {
		vm.now = now
		if changed := vm.tick(); !changed[0] || vm.v.remoteKeys(0) == nil || len(vm.calls) != 0 {
			t.Errorf("VM tick after the fetch: changed %v, keys %v, calls %d; want keys from shared data, no fetch", changed, vm.v.remoteKeys(0), len(vm.calls))
		}
		if vm.m.busy(0, now) {
			t.Error("lease still held after the fetch")
		}
	}
	// A VM started later takes the keys at start and asks for nothing.
	late := newTestVM(t, cfg, st, 9, now)
	if late.v.remoteKeys(0) == nil || late.m.wantsFetch() {
		t.Errorf("late VM: keys %v, wantsFetch %v", late.v.remoteKeys(0), late.m.wantsFetch())
	}
	// Keys in shared data are the JWKS as fetched, under the documented key.
	if _, ok := st.m["jwt-auth/jwt-auth/jwks/idp"]; !ok {
		t.Errorf("shared data keys: %v", keysOf(st))
	}
}

func keysOf(st *fakeStore) []string {
	var out []string
	for k := range st.m {
		out = append(out, k)
	}
	return out
}

// TestJWKSNoFetchAfterAnotherVMsFetch: a VM that looked at shared data just
// before another VM stored its keys and released the lease does not fetch
// again (it looks again once it sees the lease free).
func TestJWKSNoFetchAfterAnotherVMsFetch(t *testing.T) {
	cfg := remoteConfig(t)
	st := newFakeStore()
	a := newTestVM(t, cfg, st, 1, testNow)
	b := newTestVM(t, cfg, st, 2, testNow)
	b.m.sync(0, testNow) // b's tick starts: no keys yet
	a.tick()
	a.answer(t, 200, testJWKS(t)) // a fetches, stores, releases
	if changed := b.m.tryFetch(0, false, testNow); !changed || len(b.calls) != 0 || b.v.remoteKeys(0) == nil {
		t.Errorf("b.tryFetch after a's fetch: changed %v, calls %d, keys %v; want a's keys and no fetch", changed, len(b.calls), b.v.remoteKeys(0))
	}
}

// TestJWKSLeaseLapses: a VM that took the lease and never answered stops
// the others only until the fetch timeout plus the margin.
func TestJWKSLeaseLapses(t *testing.T) {
	cfg := remoteConfig(t)
	st := newFakeStore()
	a := newTestVM(t, cfg, st, 1, testNow)
	b := newTestVM(t, cfg, st, 2, testNow)
	a.tick()
	if len(a.calls) != 1 {
		t.Fatal("VM a did not fetch")
	}
	b.now = testNow.Add(2*time.Second + leaseMargin - time.Millisecond)
	b.tick()
	if len(b.calls) != 0 {
		t.Fatal("VM b fetched while a's lease held")
	}
	b.now = testNow.Add(2*time.Second + leaseMargin)
	b.tick()
	if len(b.calls) != 1 {
		t.Fatal("VM b did not take the lapsed lease")
	}
	// a's late answer still stores its keys, and does not release b's lease.
	a.now = b.now
	a.answer(t, 200, testJWKS(t))
	if !b.m.busy(0, b.now) {
		t.Error("a's late answer released b's lease")
	}
}

// TestJWKSRefreshFailureKeepsLastGoodSet: a refresh that fails keeps the
// keys until 2 × cache_duration, with a growing backoff between attempts,
// every failure logged and counted.
func TestJWKSRefreshFailureKeepsLastGoodSet(t *testing.T) {
	cfg := remoteConfig(t)
	vm := newTestVM(t, cfg, newFakeStore(), 1, testNow)
	vm.tick()
	vm.answer(t, 200, testJWKS(t))
	ks := vm.v.remoteKeys(0)

	vm.now = testNow.Add(59 * time.Second)
	vm.tick()
	if len(vm.calls) != 0 {
		t.Fatal("refreshed before cache_duration")
	}
	vm.now = testNow.Add(60 * time.Second)
	vm.tick()
	if len(vm.calls) != 1 {
		t.Fatal("no refresh at cache_duration")
	}
	vm.answer(t, 503, "down")
	if vm.v.remoteKeys(0) != ks || vm.counts[evFetchFailed] != 1 {
		t.Fatalf("after a failed refresh: same keys %v, failures %d", vm.v.remoteKeys(0) == ks, vm.counts[evFetchFailed])
	}
	if log := vm.logs[len(vm.logs)-1]; !strings.Contains(log, `jwks fetch for provider "idp" from https://idp.example/jwks failed: status 503; serving the keys fetched at`) ||
		!strings.Contains(log, "next attempt in 1s") {
		t.Errorf("failure log = %q", log)
	}
	// Backoff: nothing before 1s, then a second failure doubles it.
	vm.now = vm.now.Add(999 * time.Millisecond)
	vm.tick()
	if len(vm.calls) != 0 {
		t.Fatal("retried inside the backoff")
	}
	vm.now = vm.now.Add(time.Millisecond)
	vm.tick()
	vm.answer(t, 200, "garbage")
	if log := vm.logs[len(vm.logs)-1]; !strings.Contains(log, "invalid JWKS") || !strings.Contains(log, "next attempt in 2s") {
		t.Errorf("second failure log = %q", log)
	}
	// Until 2 × cache_duration the old keys serve; then they are dropped.
	vm.now = testNow.Add(120*time.Second - time.Millisecond)
	vm.m.expire(vm.now)
	if vm.v.remoteKeys(0) != ks {
		t.Fatal("keys dropped before 2 x cache_duration")
	}
	vm.now = testNow.Add(120 * time.Second)
	vm.m.expire(vm.now)
	if vm.v.remoteKeys(0) != nil {
		t.Fatal("keys still served at 2 x cache_duration")
	}
	if d := vm.m.need(0, false, vm.now); d != jwksWait || !vm.m.wantsFetch() {
		t.Errorf("need(no keys) after the backoff = %v, wantsFetch %v; want a wait for a new fetch", d, vm.m.wantsFetch())
	}
	// A success resets the backoff.
	vm.tick()
	vm.answer(t, 200, testJWKS(t))
	if s, _, _ := vm.m.state(vm.m.remote[0]); s.failures != 0 || !s.nextAttempt.IsZero() || s.owner != 0 {
		t.Errorf("state after success = %+v", s)
	}
}

// TestJWKSNeed: what a request without usable keys is told.
func TestJWKSNeed(t *testing.T) {
	cfg := remoteConfig(t)
	st := newFakeStore()
	vm := newTestVM(t, cfg, st, 1, testNow)
	if d := vm.m.need(1, false, testNow); d != jwksDeny {
		t.Errorf("need(HMAC provider) = %v, want deny", d)
	}
	// Asked at start: a request waits for that fetch.
	if d := vm.m.need(0, false, testNow); d != jwksWait {
		t.Errorf("need(no keys, fetch asked) = %v, want wait", d)
	}
	vm.tick()
	vm.answer(t, 503, "")
	// Backing off, nothing under way: deny at once.
	if d := vm.m.need(0, false, testNow.Add(500*time.Millisecond)); d != jwksDeny {
		t.Errorf("need(no keys, backing off) = %v, want deny", d)
	}
	// Another VM stores keys: retry.
	other := newTestVM(t, cfg, st, 2, testNow.Add(2*time.Second))
	other.tick()
	other.answer(t, 200, testJWKS(t))
	if d := vm.m.need(0, false, testNow.Add(2*time.Second)); d != jwksRetry || vm.v.remoteKeys(0) == nil {
		t.Errorf("need(keys in shared data) = %v, keys %v; want retry with keys", d, vm.v.remoteKeys(0))
	}
	// Unknown kid: one early refresh, then none until min_refresh.
	now := testNow.Add(3 * time.Second)
	if d := vm.m.need(0, true, now); d != jwksWait || vm.m.remote[0].want != wantEarly {
		t.Fatalf("need(unknown kid) = %v, want wait for an early refresh", d)
	}
	vm.now = now
	vm.tick()
	if len(vm.calls) != 1 {
		t.Fatal("no early refresh dispatched")
	}
	vm.answer(t, 200, testJWKS(t))
	if d := vm.m.need(0, true, now.Add(9*time.Second)); d != jwksDeny {
		t.Errorf("need(unknown kid within min_refresh) = %v, want deny", d)
	}
	if d := other.m.need(0, true, now.Add(9*time.Second)); d != jwksDeny {
		t.Errorf("need(unknown kid within min_refresh, other VM) = %v, want deny (min_refresh is shared)", d)
	}
	if d := vm.m.need(0, true, now.Add(10*time.Second)); d != jwksWait {
		t.Errorf("need(unknown kid after min_refresh) = %v, want wait", d)
	}
}

// TestJWKSBadAnswers: every kind of bad answer is a counted, logged
// failure and stores nothing.
func TestJWKSBadAnswers(t *testing.T) {
	cfg := remoteConfig(t)
	k := testKeys(t)
	for _, tc := range []struct {
		name   string
		status int
		body   string
		log    string
	}{
		{"reset", 0, "", "no response (connection reset)"},
		{"timeout", 504, "upstream request timeout", "status 504"},
		{"not found", 404, "", "status 404"},
		{"garbage", 200, "<html>", "invalid JWKS: invalid JSON"},
		{"empty set", 200, `{"keys":[]}`, "invalid JWKS: keys: must not be empty"},
		{"no fitting key", 200, `{"keys":[` + ecJWK(&k.p256.PublicKey, "e") + `]}`, "invalid JWKS: no key fits the provider's algorithms"},
		{"too large", 200, `{"keys":[],"x":"` + strings.Repeat("a", maxJWKSBytes) + `"}`, "over the limit of 262144"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newFakeStore()
			vm := newTestVM(t, cfg, st, 1, testNow)
			vm.tick()
			vm.answer(t, tc.status, tc.body)
			if vm.counts[evFetchFailed] != 1 || vm.v.remoteKeys(0) != nil {
				t.Errorf("failures %d, keys %v", vm.counts[evFetchFailed], vm.v.remoteKeys(0))
			}
			if _, ok := st.m["jwt-auth/jwt-auth/jwks/idp"]; ok {
				t.Error("a bad answer was stored")
			}
			if log := strings.Join(vm.logs, "\n"); !strings.Contains(log, tc.log) || !strings.Contains(log, `no keys to serve: requests that need them get 401 "keys unavailable"`) {
				t.Errorf("logs = %q, want %q", log, tc.log)
			}
		})
	}
	t.Run("dispatch refused", func(t *testing.T) {
		vm := newTestVM(t, cfg, newFakeStore(), 1, testNow)
		vm.dispatchErr = errors.New("bad argument")
		vm.tick()
		if vm.counts[evFetchFailed] != 1 || vm.counts[evFetchStarted] != 0 || vm.m.busy(0, testNow) {
			t.Errorf("counts %v, busy %v", vm.counts, vm.m.busy(0, testNow))
		}
		if log := strings.Join(vm.logs, "\n"); !strings.Contains(log, `cannot dispatch to cluster "idp": bad argument`) {
			t.Errorf("logs = %q", log)
		}
	})
}

// TestJWKSSkipsUnusableKeys: a fetched set with an unusable key beside a
// good one serves the good one, on the fetching VM and on a VM that takes
// the record up from shared data; each skipped key is logged and counted
// once, by the fetching VM. A set of unusable keys only is a failed fetch.
func TestJWKSSkipsUnusableKeys(t *testing.T) {
	cfg := remoteConfig(t)
	k := testKeys(t)
	x25519 := `{"kty":"OKP","crv":"X25519","kid":"enc-x","x":"` + b64(make([]byte, 32)) + `"}`
	good := rsaJWK(&k.rsa.PublicKey, "rsa-1")
	tok := signToken(t, "RS256", k.rsa, map[string]any{"alg": "RS256", "kid": "rsa-1"}, claimsAt(testNow, nil))

	st := newFakeStore()
	a := newTestVM(t, cfg, st, 1, testNow)
	a.tick()
	a.answer(t, 200, `{"keys":[`+x25519+`,`+good+`]}`)
	if a.counts[evFetchFailed] != 0 || a.counts[evKeySkipped] != 1 {
		t.Fatalf("counts = %v, want one skipped key and no failure", a.counts)
	}
	want := `jwks for provider "idp" from ` + remoteTestURI + `: unusable key skipped: keys[0] (kid "enc-x"): crv: unsupported curve "X25519"`
	if log := strings.Join(a.logs, "\n"); !strings.Contains(log, want) || !strings.Contains(log, "1 keys fetched from "+remoteTestURI+" (1 unusable skipped)") {
		t.Errorf("logs = %q, want %q", log, want)
	}
	b := newTestVM(t, cfg, st, 2, testNow)
	for name, vm := range map[string]*testVM{"fetching VM": a, "other VM": b} {
		if _, err := vm.v.authenticate(bearer(tok), "/", testNow); err != nil {
			t.Errorf("%s: authenticate(token of the good key) = %v, want success", name, err)
		}
	}
	if b.counts[evKeySkipped] != 0 || len(b.calls) != 0 {
		t.Errorf("other VM: counts %v, %d callouts; want none", b.counts, len(b.calls))
	}

	t.Run("only unusable keys", func(t *testing.T) {
		vm := newTestVM(t, cfg, newFakeStore(), 1, testNow)
		vm.tick()
		secp := `{"kty":"EC","crv":"secp256k1","kid":"k1","x":"AA","y":"AA"}`
		vm.answer(t, 200, `{"keys":[`+x25519+`,`+secp+`]}`)
		if vm.counts[evFetchFailed] != 1 || vm.counts[evKeySkipped] != 2 || vm.v.remoteKeys(0) != nil {
			t.Errorf("counts = %v, keys %v; want a failure, two skipped keys, no keys", vm.counts, vm.v.remoteKeys(0))
		}
		if log := strings.Join(vm.logs, "\n"); !strings.Contains(log, "invalid JWKS: keys: no usable signature verification key (2 unusable skipped)") {
			t.Errorf("logs = %q", log)
		}
	})
}

// TestJWKSForeignRecordIgnored: a record from another uri under the same
// key (two filters sharing a root_id and provider name) is not used.
func TestJWKSForeignRecordIgnored(t *testing.T) {
	cfg := remoteConfig(t)
	st := newFakeStore()
	st.m["jwt-auth/jwt-auth/jwks/idp"] = fakeEntry{v: encodeJWKSRecord(testNow, "https://other.example/jwks", []byte(testJWKS(t))), cas: 1}
	st.cas = 1
	vm := newTestVM(t, cfg, st, 1, testNow)
	if vm.v.remoteKeys(0) != nil || !vm.m.wantsFetch() {
		t.Errorf("keys %v, wantsFetch %v: took another uri's keys", vm.v.remoteKeys(0), vm.m.wantsFetch())
	}
}

// TestJWKSConflictCap: when every compare-and-swap loses, the lease loop
// gives up after casRetries attempts, dispatches nothing, and says so.
func TestJWKSConflictCap(t *testing.T) {
	cfg := remoteConfig(t)
	st := newFakeStore()
	vm := newTestVM(t, cfg, st, 1, testNow)
	st.conflicts = casRetries
	vm.tick()
	if len(vm.calls) != 0 || vm.counts[evConflict] != 1 {
		t.Fatalf("calls %d, conflicts %d; want 0, 1", len(vm.calls), vm.counts[evConflict])
	}
	if log := vm.logs[len(vm.logs)-1]; log != fmt.Sprintf(`jwks for provider "idp": gave up taking the fetch lease after %d compare-and-swap conflicts`, casRetries) {
		t.Errorf("log = %q", log)
	}
	// One conflict fewer than the cap: the loop wins on its last try.
	st.conflicts = casRetries - 1
	vm.tick()
	if len(vm.calls) != 1 {
		t.Errorf("calls %d after %d conflicts, want 1", len(vm.calls), casRetries-1)
	}
}
