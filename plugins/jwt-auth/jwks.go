package main

// Remote JWKS: one fetch serves every worker VM.
//
// Each VM has its own Go heap, so keys fetched by one worker are invisible
// to the others unless they travel through shared data (convention 5
// in README.md, "Writing a filter"). Per remote provider there are two shared-data keys:
//
//	jwt-auth/<ns>/jwks/<provider>        the last good JWKS and when it was fetched
//	jwt-auth/<ns>/jwks/<provider>/fetch  who is fetching (a lease), the failure
//	                                     backoff, and the last unknown-kid refresh
//
// <ns> is the plugin's root_id, or its plugin_name when root_id is empty.
// Every VM reads the first key on its tick (and on a request that finds no
// usable key); a VM that sees a refresh is due takes the lease with a
// compare-and-swap and makes the one callout. A lease lapses after the
// fetch timeout plus a margin, so a VM that dies mid-fetch does not stop
// the others for long.
//
// This file has no proxywasm import: the host calls go through jwksHost,
// which main.go implements and the tests fake.

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// jwksHost is what the JWKS manager needs from the proxy.
type jwksHost interface {
	// sharedGet reads a shared-data key; ok is false when it is absent
	// (or unreadable, which the manager treats the same way).
	sharedGet(key string) (value []byte, cas uint32, ok bool)
	// sharedSet writes a shared-data key with Envoy's rules: a non-zero
	// cas must match for an existing key. mismatch reports a CAS failure;
	// err any other failure.
	sharedSet(key string, value []byte, cas uint32) (mismatch bool, err error)
	// httpGet dispatches the JWKS fetch of r; done is called once with the
	// response status (0 when the call failed without one) and body (at
	// most maxJWKSBytes+1 bytes of it). An error means nothing was
	// dispatched and done is never called.
	httpGet(r *remoteJWKS, done func(status int, body []byte)) error
	// note reports an event: it is logged (when msg is not empty) and
	// counted by the wiring.
	note(e jwksEvent, msg string)
}

// jwksEvent is something the wiring logs or counts.
type jwksEvent uint8

const (
	evFetchStarted   jwksEvent = iota // concierge_jwt_auth_jwks_fetches_total
	evFetchFailed                     // warn log; concierge_jwt_auth_jwks_failures_total
	evKeysUpdated                     // info log
	evConflict                        // warn log; concierge_jwt_auth_shared_data_conflicts_total
	evKeysDropped                     // warn log
	evHostError                       // warn log: a host call failed
	evKeySkipped                      // warn log; concierge_jwt_auth_jwks_keys_skipped_total
	evUnknownCluster                  // error log: the configuration names a cluster the proxy lacks
)

// errUnknownCluster is httpGet's answer when the proxy refuses the callout
// for its cluster: the fetch's headers are always complete, so Envoy's
// BAD_ARGUMENT can only mean that remote_jwks.http_uri.cluster names no
// cluster of the proxy, a configuration mistake no retry mends.
var errUnknownCluster = errors.New("the proxy has no such cluster")

// Limits of the remote key machinery.
const (
	// maxJWKSBytes bounds a fetched JWKS document (and so each provider's
	// shared-data value and per-VM copy). Real IdPs serve a few KiB.
	maxJWKSBytes = 256 << 10
	// casRetries caps every compare-and-swap loop. When it is hit, the
	// writer gives up for this round (another VM is updating the same key,
	// so it is doing the work) and the event is logged and counted.
	casRetries = 8
	// leaseMargin is added to the fetch timeout to get the lease length: a
	// fetch that is still out when its lease lapses has already timed out.
	leaseMargin = time.Second
	// firstRetry is the backoff after one failed fetch; it doubles per
	// consecutive failure up to the provider's min_refresh.
	firstRetry = time.Second
)

// jwksDecision is what a request that needs remote keys should do.
type jwksDecision uint8

const (
	jwksDeny  jwksDecision = iota // no keys and none coming soon: deny
	jwksRetry                     // another VM stored new keys: verify again now
	jwksWait                      // a fetch is under way or was asked for: pause
)

// jwksManager keeps one VM's remote key sets in step with shared data and
// fetches them when this VM wins the lease. Not safe for concurrent use (a
// proxy-wasm VM is single-threaded).
type jwksManager struct {
	v      *verifier
	host   jwksHost
	now    func() time.Time
	owner  uint64 // this VM's lease identity, random and non-zero
	remote []*remoteState
	// onSettled is called after this VM's fetch for provider i has ended,
	// well or badly, so that the streams waiting for it are looked at.
	onSettled func(i int)
}

// remoteState is one remote provider's keys as this VM knows them.
type remoteState struct {
	p         *provider
	dataKey   string
	stateKey  string
	raw       []byte    // JWKS document of the keys in use; nil when none
	cas       uint32    // CAS of the shared record they came from (0: not from one)
	fetchedAt time.Time // when they were fetched
	fetching  bool      // this VM has a callout out
	want      wantKind  // a fetch a stream asked for, started on the next tick
}

type wantKind uint8

const (
	wantNone  wantKind = iota
	wantKeys           // no usable keys
	wantEarly          // an unknown kid: an early refresh, limited by min_refresh
)

// jwksKeyPrefix is the shared-data namespace of a filter whose root_id (or
// plugin name) is ns.
func jwksKeyPrefix(ns string) string { return "jwt-auth/" + ns + "/jwks/" }

func newJWKSManager(cfg *config, v *verifier, host jwksHost, now func() time.Time, ns string, owner uint64) *jwksManager {
	m := &jwksManager{v: v, host: host, now: now, owner: owner, remote: make([]*remoteState, len(cfg.providers))}
	for i, p := range cfg.providers {
		if p.remote == nil {
			continue
		}
		key := jwksKeyPrefix(ns) + p.name
		m.remote[i] = &remoteState{p: p, dataKey: key, stateKey: key + "/fetch"}
	}
	return m
}

// start runs in OnPluginStart: it creates each provider's fetch-state key
// if absent, so that every later update of it is a real compare-and-swap
// (Envoy ignores the CAS when it creates a key), and takes up any keys
// other VMs already fetched. It asks for a fetch where there are none.
func (m *jwksManager) start(now time.Time) {
	for i, rs := range m.remote {
		if rs == nil {
			continue
		}
		if _, _, ok := m.host.sharedGet(rs.stateKey); !ok {
			m.host.sharedSet(rs.stateKey, fetchState{}.encode(), 0) //nolint:errcheck // best effort; tryFetch copes with an absent key
		}
		m.sync(i, now)
		if rs.raw == nil {
			rs.want = wantKeys
		}
	}
}

// wantsFetch reports whether a stream asked for a fetch that the next tick
// should start.
func (m *jwksManager) wantsFetch() bool {
	for _, rs := range m.remote {
		if rs != nil && rs.want != wantNone {
			return true
		}
	}
	return false
}

// expire drops the key sets older than 2 × cache_duration: when refreshes
// keep failing, the last good set serves that long and no longer. It makes
// no host call, so the request path runs it every time.
func (m *jwksManager) expire(now time.Time) {
	for i, rs := range m.remote {
		if rs != nil && rs.raw != nil && !now.Before(rs.staleAt()) {
			m.drop(i)
		}
	}
}

func (rs *remoteState) staleAt() time.Time { return rs.fetchedAt.Add(2 * rs.p.remote.cacheDuration) }
func (rs *remoteState) dueAt() time.Time   { return rs.fetchedAt.Add(rs.p.remote.cacheDuration) }

func (m *jwksManager) drop(i int) {
	rs := m.remote[i]
	rs.raw = nil
	m.v.setRemoteKeys(i, nil)
	m.host.note(evKeysDropped, fmt.Sprintf("jwks for provider %q: the keys fetched at %s are older than 2 x cache_duration and no refresh succeeded: dropped; requests that need them get 401 \"keys unavailable\" until a fetch succeeds",
		rs.p.name, rs.fetchedAt.UTC().Format(time.RFC3339)))
}

// sync takes up the record in shared data when it is newer than the keys
// in use, then drops the keys if they are stale. It reports whether the
// keys in use changed.
func (m *jwksManager) sync(i int, now time.Time) (changed bool) {
	rs := m.remote[i]
	if raw, cas, ok := m.host.sharedGet(rs.dataKey); ok && cas != rs.cas {
		rec, err := decodeJWKSRecord(raw)
		switch {
		case err != nil || rec.uri != rs.p.remote.uri:
			// Not a record of ours (another filter with the same root_id
			// and provider name, or a format we do not know): ignore it.
		case rec.fetchedAt.Before(rs.fetchedAt):
			// Older than what this VM fetched itself.
		case bytes.Equal(rec.body, rs.raw):
			rs.cas, rs.fetchedAt = cas, rec.fetchedAt
		default:
			// The fetching VM logged and counted the skipped keys.
			ks, _, err := parseFetchedJWKS(rec.body)
			if err != nil || !ks.fitsAny(rs.p.algs) {
				break // only checked documents are stored; be safe anyway
			}
			rs.cas, rs.fetchedAt, rs.raw = cas, rec.fetchedAt, rec.body
			m.v.setRemoteKeys(i, ks)
			changed = true
		}
	}
	if rs.raw != nil && !now.Before(rs.staleAt()) {
		m.drop(i)
		changed = true
	}
	return changed
}

// need is called by a request whose token needs provider i's remote keys:
// there are none (unknownKid false), or none with the token's kid
// (unknownKid true). It says whether the request should wait, try again
// or be denied; it never dispatches from the stream (see tick).
func (m *jwksManager) need(i int, unknownKid bool, now time.Time) jwksDecision {
	rs := m.remote[i]
	if rs == nil {
		return jwksDeny
	}
	if m.sync(i, now) && m.v.remoteKeys(i) != nil {
		return jwksRetry
	}
	if rs.fetching || rs.want != wantNone {
		return jwksWait
	}
	st, _, _ := m.state(rs)
	switch {
	case st.leased(now):
		return jwksWait
	case unknownKid && now.Before(st.lastEarly.Add(rs.p.remote.minRefresh)):
		return jwksDeny // at most one early refresh per min_refresh
	case !unknownKid && now.Before(st.nextAttempt):
		return jwksDeny // backing off after failed fetches
	}
	rs.want = wantKeys
	if unknownKid {
		rs.want = wantEarly
	}
	return jwksWait
}

// busy reports whether provider i's keys may still change soon: this VM
// has a fetch out or asked for one, or another VM holds the lease.
func (m *jwksManager) busy(i int, now time.Time) bool {
	rs := m.remote[i]
	if rs == nil {
		return false
	}
	if rs.fetching || rs.want != wantNone {
		return true
	}
	st, _, _ := m.state(rs)
	return st.leased(now)
}

// tick runs on every tick: take up keys other VMs stored, then start the
// fetches that are due (keys missing or older than cache_duration) or that
// streams asked for. changed[i] is true when provider i's keys changed.
func (m *jwksManager) tick(now time.Time) (changed []bool) {
	changed = make([]bool, len(m.remote))
	for i, rs := range m.remote {
		if rs == nil {
			continue
		}
		changed[i] = m.sync(i, now)
		want := rs.want
		rs.want = wantNone
		if rs.fetching {
			continue
		}
		if want == wantEarly {
			changed[i] = m.tryFetch(i, true, now) || changed[i]
		} else if want == wantKeys || rs.raw == nil || !now.Before(rs.dueAt()) {
			changed[i] = m.tryFetch(i, false, now) || changed[i]
		}
	}
	return changed
}

// tryFetch takes provider i's lease and dispatches the fetch, unless
// another VM holds the lease, another VM's fetch has just brought what was
// wanted, the backoff after failures (or, for an early refresh,
// min_refresh) says not yet, or the CAS loop runs out. It reports whether
// the keys in use changed meanwhile.
func (m *jwksManager) tryFetch(i int, early bool, now time.Time) (changed bool) {
	rs := m.remote[i]
	r := rs.p.remote
	for range casRetries {
		st, cas, exists := m.state(rs)
		if st.leased(now) {
			return changed
		}
		// A VM stores its keys before it releases the lease, so keys
		// fetched by the last holder are visible now: look again.
		if m.sync(i, now) {
			changed = true
			if early || now.Before(rs.dueAt()) {
				return changed
			}
		}
		switch {
		case early && now.Before(st.lastEarly.Add(r.minRefresh)):
			return changed
		case !early && rs.raw != nil && now.Before(rs.dueAt()):
			return changed
		case !early && now.Before(st.nextAttempt):
			return changed
		}
		next := st
		next.owner, next.leaseUntil = m.owner, now.Add(r.timeout+leaseMargin)
		if early {
			next.lastEarly = now
		}
		if !exists {
			cas = 0
		}
		mismatch, err := m.host.sharedSet(rs.stateKey, next.encode(), cas)
		if mismatch {
			continue
		}
		if err != nil {
			m.host.note(evHostError, fmt.Sprintf("jwks for provider %q: cannot take the fetch lease: %v", rs.p.name, err))
			return changed
		}
		if !exists {
			// Envoy ignores the CAS when it creates a key, so two VMs may
			// both have "created" it: only the one whose write stuck goes on.
			if st2, _, _ := m.state(rs); st2.owner != m.owner {
				return changed
			}
		}
		m.dispatch(i, now)
		return changed
	}
	m.host.note(evConflict, fmt.Sprintf("jwks for provider %q: gave up taking the fetch lease after %d compare-and-swap conflicts", rs.p.name, casRetries))
	return changed
}

func (m *jwksManager) dispatch(i int, now time.Time) {
	rs := m.remote[i]
	err := m.host.httpGet(rs.p.remote, func(status int, body []byte) { m.fetched(i, status, body) })
	if err != nil {
		if errors.Is(err, errUnknownCluster) {
			m.host.note(evUnknownCluster, fmt.Sprintf("provider %q: remote_jwks.http_uri.cluster %q names no cluster of this proxy: add the cluster to the bootstrap or correct the name", rs.p.name, rs.p.remote.cluster))
		}
		m.failed(i, now, "cannot dispatch to cluster "+strconv.Quote(rs.p.remote.cluster)+": "+err.Error())
		return
	}
	rs.fetching = true
	m.host.note(evFetchStarted, "")
}

// fetched handles the answer to this VM's fetch.
func (m *jwksManager) fetched(i int, status int, body []byte) {
	rs := m.remote[i]
	rs.fetching = false
	now := m.now()
	defer func() {
		if m.onSettled != nil {
			m.onSettled(i)
		}
	}()
	switch {
	case status == 0:
		m.failed(i, now, "no response (connection reset)")
		return
	case status != 200:
		m.failed(i, now, "status "+strconv.Itoa(status))
		return
	case len(body) > maxJWKSBytes:
		m.failed(i, now, fmt.Sprintf("JWKS over the limit of %d bytes", maxJWKSBytes))
		return
	}
	ks, skipped, err := parseFetchedJWKS(body)
	for _, k := range skipped {
		m.host.note(evKeySkipped, fmt.Sprintf("jwks for provider %q from %s: unusable key skipped: %s", rs.p.name, rs.p.remote.uri, k))
	}
	if err != nil {
		m.failed(i, now, "invalid JWKS: "+err.Error())
		return
	}
	if !ks.fitsAny(rs.p.algs) {
		m.failed(i, now, "invalid JWKS: no key fits the provider's algorithms")
		return
	}
	body = bytes.Clone(body)
	rs.raw, rs.cas, rs.fetchedAt = body, 0, now
	m.v.setRemoteKeys(i, ks)
	m.store(rs, body, now)
	m.release(rs, now, false)
	msg := fmt.Sprintf("jwks for provider %q: %d keys fetched from %s", rs.p.name, len(ks.keys), rs.p.remote.uri)
	if len(skipped) > 0 {
		msg += fmt.Sprintf(" (%d unusable skipped)", len(skipped))
	}
	m.host.note(evKeysUpdated, msg)
}

// store writes a fetched JWKS to shared data unless a newer one is there.
func (m *jwksManager) store(rs *remoteState, body []byte, now time.Time) {
	rec := encodeJWKSRecord(now, rs.p.remote.uri, body)
	for range casRetries {
		raw, cas, ok := m.host.sharedGet(rs.dataKey)
		if ok {
			if old, err := decodeJWKSRecord(raw); err == nil && old.uri == rs.p.remote.uri && old.fetchedAt.After(now) {
				return
			}
		} else {
			cas = 0
		}
		mismatch, err := m.host.sharedSet(rs.dataKey, rec, cas)
		if mismatch {
			continue
		}
		if err != nil {
			m.host.note(evHostError, fmt.Sprintf("jwks for provider %q: cannot store the keys in shared data (other workers keep theirs): %v", rs.p.name, err))
		}
		return
	}
	m.host.note(evConflict, fmt.Sprintf("jwks for provider %q: gave up storing the keys after %d compare-and-swap conflicts", rs.p.name, casRetries))
}

// failed records a failed fetch: the lease is released, the backoff grows,
// and the failure is logged and counted. The keys in use stay until they
// are stale.
func (m *jwksManager) failed(i int, now time.Time, why string) {
	rs := m.remote[i]
	st := m.release(rs, now, true)
	msg := fmt.Sprintf("jwks fetch for provider %q from %s failed: %s; ", rs.p.name, rs.p.remote.uri, why)
	if rs.raw != nil {
		msg += fmt.Sprintf("serving the keys fetched at %s until %s", rs.fetchedAt.UTC().Format(time.RFC3339), rs.staleAt().UTC().Format(time.RFC3339))
	} else {
		msg += `no keys to serve: requests that need them get 401 "keys unavailable"`
	}
	if !st.nextAttempt.IsZero() {
		msg += fmt.Sprintf("; next attempt in %s", st.nextAttempt.Sub(now).Round(time.Millisecond))
	}
	m.host.note(evFetchFailed, msg)
}

// release gives the lease back (if this VM still holds it) and records
// the outcome: a success resets the backoff, a failure doubles it. It
// returns the state it wrote.
func (m *jwksManager) release(rs *remoteState, now time.Time, failure bool) fetchState {
	for range casRetries {
		st, cas, exists := m.state(rs)
		if !exists {
			cas = 0
		}
		if st.owner == m.owner {
			st.owner, st.leaseUntil = 0, time.Time{}
		}
		if failure {
			st.failures++
			st.nextAttempt = now.Add(backoff(st.failures, rs.p.remote.minRefresh))
		} else {
			st.failures, st.nextAttempt = 0, time.Time{}
		}
		if mismatch, _ := m.host.sharedSet(rs.stateKey, st.encode(), cas); mismatch {
			continue
		}
		return st // on another error the lease lapses by itself
	}
	m.host.note(evConflict, fmt.Sprintf("jwks for provider %q: gave up releasing the fetch lease after %d compare-and-swap conflicts (it lapses by itself)", rs.p.name, casRetries))
	return fetchState{}
}

// backoff is the wait after n consecutive failed fetches: 1s, 2s, 4s, ...
// up to max.
func backoff(n int, max time.Duration) time.Duration {
	d := firstRetry
	for k := 1; k < n && d < max; k++ {
		d *= 2
	}
	return min(d, max)
}

// state reads provider rs's fetch state; a missing or unreadable record is
// the zero state.
func (m *jwksManager) state(rs *remoteState) (st fetchState, cas uint32, exists bool) {
	raw, cas, ok := m.host.sharedGet(rs.stateKey)
	if !ok {
		return fetchState{}, 0, false
	}
	st, _ = decodeFetchState(raw)
	return st, cas, true
}

// fetchState is the shared record of who fetches a provider's JWKS.
type fetchState struct {
	owner       uint64    // VM holding the lease; 0 when nobody
	leaseUntil  time.Time // the lease is void after this
	nextAttempt time.Time // no fetch for missing or due keys before this (backoff)
	lastEarly   time.Time // the last unknown-kid refresh
	failures    int       // consecutive failed fetches
}

func (s fetchState) leased(now time.Time) bool { return s.owner != 0 && now.Before(s.leaseUntil) }

const fetchStateTag = "fetch1"

// encode writes "fetch1 <owner hex> <lease> <next> <early> <failures>",
// times in Unix nanoseconds (0 for none).
func (s fetchState) encode() []byte {
	b := make([]byte, 0, 80)
	b = append(b, fetchStateTag...)
	b = append(b, ' ')
	b = strconv.AppendUint(b, s.owner, 16)
	for _, t := range [...]time.Time{s.leaseUntil, s.nextAttempt, s.lastEarly} {
		b = append(b, ' ')
		b = strconv.AppendInt(b, unixNano(t), 10)
	}
	b = append(b, ' ')
	return strconv.AppendInt(b, int64(s.failures), 10)
}

var errRecord = errors.New("unknown shared-data record")

func decodeFetchState(b []byte) (fetchState, error) {
	f := strings.Fields(string(b))
	if len(f) != 6 || f[0] != fetchStateTag {
		return fetchState{}, errRecord
	}
	var s fetchState
	var err error
	if s.owner, err = strconv.ParseUint(f[1], 16, 64); err != nil {
		return fetchState{}, errRecord
	}
	for k, dst := range [...]*time.Time{&s.leaseUntil, &s.nextAttempt, &s.lastEarly} {
		n, err := strconv.ParseInt(f[2+k], 10, 64)
		if err != nil {
			return fetchState{}, errRecord
		}
		*dst = fromUnixNano(n)
	}
	n, err := strconv.Atoi(f[5])
	if err != nil || n < 0 {
		return fetchState{}, errRecord
	}
	s.failures = n
	return s, nil
}

// jwksRecord is the shared record of a provider's last good JWKS.
type jwksRecord struct {
	fetchedAt time.Time
	uri       string // where it came from: a record of another uri is not used
	body      []byte
}

const jwksRecordTag = "jwks1"

// encodeJWKSRecord writes "jwks1 <fetched at, Unix ns> <uri>\n<JWKS>".
func encodeJWKSRecord(fetchedAt time.Time, uri string, body []byte) []byte {
	b := make([]byte, 0, len(jwksRecordTag)+len(uri)+len(body)+24)
	b = append(b, jwksRecordTag...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, unixNano(fetchedAt), 10)
	b = append(b, ' ')
	b = append(b, uri...)
	b = append(b, '\n')
	return append(b, body...)
}

func decodeJWKSRecord(b []byte) (jwksRecord, error) {
	head, body, ok := bytes.Cut(b, []byte{'\n'})
	if !ok {
		return jwksRecord{}, errRecord
	}
	f := strings.Fields(string(head))
	if len(f) != 3 || f[0] != jwksRecordTag {
		return jwksRecord{}, errRecord
	}
	n, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil || n <= 0 {
		return jwksRecord{}, errRecord
	}
	return jwksRecord{fetchedAt: fromUnixNano(n), uri: f[2], body: body}, nil
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}
