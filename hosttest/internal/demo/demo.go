// Package demo runs the loopback services that envoy/local.yaml points
// at, for `make run` and the end-to-end tests: two users instances, orders,
// a deliberately flaky service, and an identity provider serving a JWKS
// whose key signs demo tokens.
package demo

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Ports are where the services listen on 127.0.0.1; 0 lets the OS choose.
type Ports struct {
	Users  []int
	Orders int
	Flaky  int
	IdP    int
}

// LocalPorts are envoy/local.yaml's.
var LocalPorts = Ports{Users: []int{9101, 9102}, Orders: 9201, Flaky: 9301, IdP: 9401}

// Issuer and Audience are the ones envoy/local.yaml's jwt-auth provider
// expects.
const (
	Issuer   = "http://127.0.0.1:9401"
	Audience = "concierge-api"
)

// PartnerKey is the demo partner's API key. envoy/local.yaml's key-auth
// holds only its SHA-256 digest (printf %s "$KEY" | sha256sum); the key is
// public, like everything in the demo.
const PartnerKey = "concierge-demo-partner-key"

// Demo is the running services.
type Demo struct {
	// Addrs maps a service (users, orders, flaky, idp) to its addresses.
	Addrs map[string][]string

	key     *ecdsa.PrivateKey
	kid     string
	mu      sync.Mutex
	servers []*http.Server
}

// Start starts every service; on error none is left running.
func Start(p Ports) (*Demo, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	d := &Demo{Addrs: map[string][]string{}, key: key}
	sum := sha256.Sum256(key.PublicKey.X.Bytes())
	d.kid = "demo-" + base64.RawURLEncoding.EncodeToString(sum[:6])
	var flakyCount atomic.Uint64
	type svc struct {
		name string
		port int
		h    http.Handler
	}
	var svcs []svc
	for i, port := range p.Users {
		svcs = append(svcs, svc{"users", port, service("users", fmt.Sprintf("users-%d", i+1), nil)})
	}
	svcs = append(svcs,
		svc{"orders", p.Orders, service("orders", "orders-1", func(r *http.Request) any {
			return []map[string]any{{"id": 7, "item": "flat white", "total": 3.5}, {"id": 8, "item": "croissant", "total": 2.2}}
		})},
		svc{"flaky", p.Flaky, flaky(&flakyCount)},
		svc{"idp", p.IdP, http.HandlerFunc(d.jwks)},
	)
	for _, s := range svcs {
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)))
		if err != nil {
			d.Close()
			return nil, fmt.Errorf("demo service %s: %w", s.name, err)
		}
		srv := &http.Server{Handler: s.h, ReadHeaderTimeout: 10 * time.Second}
		d.servers = append(d.servers, srv)
		d.Addrs[s.name] = append(d.Addrs[s.name], ln.Addr().String())
		go srv.Serve(ln)
	}
	return d, nil
}

// Close stops every service.
func (d *Demo) Close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, s := range d.servers {
		s.Close()
	}
	d.servers = nil
}

// Token signs a demo token (ES256, the JWKS key) for sub with roles,
// issued now and valid for ttl.
func (d *Demo) Token(sub string, roles []string, ttl time.Duration) (string, error) {
	now := time.Now()
	t := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"iss": Issuer, "aud": Audience, "sub": sub, "roles": roles,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(ttl).Unix(),
	})
	t.Header["kid"] = d.kid
	return t.SignedString(d.key)
}

// jwk is the public half of the demo key (RFC 7517, RFC 7518 §6.2).
type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

func (d *Demo) jwks(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/healthz" {
		return
	}
	if r.URL.Path != "/.well-known/jwks.json" {
		http.NotFound(w, r)
		return
	}
	pub := d.key.PublicKey
	coord := func(b []byte) string {
		out := make([]byte, 32) // P-256 coordinates are 32 bytes, left-padded
		copy(out[32-len(b):], b)
		return base64.RawURLEncoding.EncodeToString(out)
	}
	w.Header().Set("content-type", "application/json")
	json.NewEncoder(w).Encode(map[string][]jwk{"keys": {{Kty: "EC", Crv: "P-256", X: coord(pub.X.Bytes()), Y: coord(pub.Y.Bytes()), Kid: d.kid, Alg: "ES256", Use: "sig"}}})
}

// service answers every path with JSON naming itself and the headers the
// gateway passed on: what a newcomer wants to see.
func service(name, instance string, data func(*http.Request) any) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			w.Write([]byte("ok"))
			return
		}
		seen := map[string]string{}
		for _, h := range []string{"x-request-id", "x-user-id", "x-user-roles", "x-gateway", "x-forwarded-for", "x-envoy-original-path", "authorization", "traceparent", "x-consumer", "x-consumer-permissions", "x-api-key"} {
			if v := r.Header.Get(h); v != "" {
				seen[h] = v
			}
		}
		out := map[string]any{"service": name, "instance": instance, "method": r.Method, "path": r.URL.RequestURI(), "headers": seen}
		// Public pages may be cached for 30 s: response-cache's demo.
		if strings.HasPrefix(r.URL.Path, "/public/") {
			w.Header().Set("cache-control", "public, max-age=30")
		}
		if data != nil {
			out["data"] = data(r)
		}
		w.Header().Set("content-type", "application/json")
		json.NewEncoder(w).Encode(out)
	})
}

// flaky fails one request in three with a 503.
func flaky(n *atomic.Uint64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			return
		}
		w.Header().Set("content-type", "application/json")
		if n.Add(1)%3 == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(`{"error":"flaky service failed this time"}` + "\n"))
			return
		}
		w.Write([]byte(`{"service":"flaky","ok":true}` + "\n"))
	})
}

// Rewrite points a bootstrap written for LocalPorts at d's actual
// addresses, with the gateway's listener and admin on the given ports
// ("0" lets the OS choose). Tests use it to run envoy/local.yaml itself.
func (d *Demo) Rewrite(yaml string, listenerPort, adminPort string) string {
	r := []string{"port_value: 8080 ", "port_value: " + listenerPort + " ", "port_value: 9901 ", "port_value: " + adminPort + " "}
	add := func(from int, addr string) {
		_, p, _ := net.SplitHostPort(addr)
		r = append(r, fmt.Sprintf("port_value: %d ", from), "port_value: "+p+" ")
	}
	for i, p := range LocalPorts.Users {
		if i < len(d.Addrs["users"]) {
			add(p, d.Addrs["users"][i])
		}
	}
	add(LocalPorts.Orders, d.Addrs["orders"][0])
	add(LocalPorts.Flaky, d.Addrs["flaky"][0])
	add(LocalPorts.IdP, d.Addrs["idp"][0])
	return strings.NewReplacer(r...).Replace(yaml)
}
