package gateway

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"

	"github.com/concierge-wasm/concierge/hosttest/internal/abi"
)

// What Envoy's downstream codecs do with a request before the connection
// manager sees it, as far as the gateway emulates it: header names with
// underscores (common_http_protocol_options.headers_with_underscores_action)
// and HTTP/1 trailers (http_protocol_options.enable_trailers). net/http has
// parsed the request by then; the gateway applies the same rules to what
// it parsed.

// codecStats are Envoy's per-codec counters the gateway keeps, rooted as
// Envoy roots downstream codec stats (http1.*, http2.*).
type codecStats struct {
	droppedUnderscore  [2]atomic.Uint64 // [0] http1, [1] http2
	rejectedUnderscore [2]atomic.Uint64
}

// codecIndex is 0 for HTTP/1, 1 for HTTP/2.
func codecIndex(r *http.Request) int {
	if r.ProtoMajor == 2 {
		return 1
	}
	return 0
}

// underscoreDetails is Envoy's response code details for a rejected
// underscore name, per codec.
var underscoreDetails = [2]string{"http1.unexpected_underscore", "http2.unexpected_underscore"}

// screenUnderscores applies headers_with_underscores_action to the request
// header names, as Envoy's codecs do while they parse: DROP_HEADER removes
// each such header (counted in <codec>.dropped_headers_with_underscores);
// REJECT_REQUEST refuses the request (counted in
// <codec>.requests_rejected_with_underscores_in_headers) — HTTP/1 with a
// 400 and the connection closed (details http1.unexpected_underscore),
// HTTP/2 by resetting the stream (http2.unexpected_underscore: nghttp2
// and oghttp2 reset it, no response is sent). It reports whether the
// request goes on.
func (l *listener) screenUnderscores(w http.ResponseWriter, r *http.Request) bool {
	if l.hcm.Underscores == corev3.HttpProtocolOptions_ALLOW {
		return true
	}
	ci := codecIndex(r)
	for k := range r.Header {
		if strings.IndexByte(k, '_') < 0 {
			continue
		}
		if l.hcm.Underscores == corev3.HttpProtocolOptions_DROP_HEADER {
			// Envoy counts each header line; net/http merged them.
			l.g.codec.droppedUnderscore[ci].Add(uint64(len(r.Header[k])))
			delete(r.Header, k)
			continue
		}
		l.g.codec.rejectedUnderscore[ci].Add(1)
		l.g.log.Debugf("http", "%s %s: rejecting the request: header name %q contains an underscore (%s)", r.Method, r.RequestURI, strings.ToLower(k), underscoreDetails[ci])
		if ci == 1 {
			panic(http.ErrAbortHandler) // RST_STREAM
		}
		l.count(http.StatusBadRequest)
		w.Header().Set("content-type", "text/plain")
		w.Header().Set("connection", "close")
		l.serverHeader(w.Header())
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, http.StatusText(http.StatusBadRequest))
		return false
	}
	return true
}

// requestTrailers are the trailers net/http read after the request body,
// as the filters get them: none on HTTP/1 unless the connection manager
// enables trailers (Envoy's HTTP/1 codec ignores them; HTTP/2 always
// passes them), and with headers_with_underscores_action applied to their
// names as to headers. reject names the codec's details when a name with
// an underscore refuses the request.
func (l *listener) requestTrailers(r *http.Request) (trailers []abi.Pair, reject string) {
	if !l.trailersPass(r) {
		return nil, ""
	}
	ci := codecIndex(r)
	for k, vs := range r.Trailer {
		if len(vs) == 0 {
			continue // announced in a Trailer header but not sent
		}
		lk := strings.ToLower(k)
		if strings.IndexByte(lk, '_') >= 0 {
			switch l.hcm.Underscores {
			case corev3.HttpProtocolOptions_DROP_HEADER:
				l.g.codec.droppedUnderscore[ci].Add(uint64(len(vs)))
				continue
			case corev3.HttpProtocolOptions_REJECT_REQUEST:
				l.g.codec.rejectedUnderscore[ci].Add(1)
				return nil, underscoreDetails[ci]
			}
		}
		for _, v := range vs {
			trailers = append(trailers, abi.Pair{Key: lk, Value: v})
		}
	}
	return trailers, ""
}

// trailersPass reports whether trailers cross this client's codec, in
// either direction: Envoy's HTTP/1 codec ignores request trailers and
// leaves response trailers out unless trailers are enabled.
func (l *listener) trailersPass(r *http.Request) bool {
	return r.ProtoMajor == 2 || l.hcm.HTTP1Trailers
}

// dropTrailers removes the response trailers an upstream handler set, once
// it is done, when the client's codec does not carry them.
func (d *directWriter) dropTrailers() {
	if !d.noTrailers {
		return
	}
	for k := range d.Header() {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			delete(d.Header(), k)
		}
	}
}

// directBody is the request body of a connection manager without filters
// on its way to the router: when it ends, the client's trailers are passed
// on as the codec passes them (requestTrailers), into the router's request
// in place (the router announced their names when it sent the headers).
type directBody struct {
	io.ReadCloser
	l      *listener
	client *http.Request // net/http fills client.Trailer at the body's end
	to     http.Header
	cancel context.CancelFunc
	reject string
}

var errRejectedTrailer = errors.New("request trailer rejected by headers_with_underscores_action")

// directBody wraps r2's body (r2 is the router's copy of the client's
// request r) and gives r2 a context it can cancel.
func (l *listener) directBody(r, r2 *http.Request) (*http.Request, *directBody) {
	ctx, cancel := context.WithCancel(r2.Context())
	r2 = r2.WithContext(ctx)
	b := &directBody{ReadCloser: r2.Body, l: l, client: r, to: r2.Trailer, cancel: cancel}
	if !l.trailersPass(r) {
		r2.Trailer = nil
	}
	if r2.Body != nil && r2.Body != http.NoBody {
		r2.Body = b
	}
	return r2, b
}

func (b *directBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != io.EOF || b.to == nil || !b.l.trailersPass(b.client) {
		return n, err
	}
	ts, reject := b.l.requestTrailers(b.client)
	clear(b.to)
	if reject != "" {
		// Cancelling first makes the router give up without answering, so
		// rejectTrailers answers as the codec does.
		b.reject = reject
		b.cancel()
		return n, errRejectedTrailer
	}
	for _, t := range ts {
		b.to[http.CanonicalHeaderKey(t.Key)] = append(b.to[http.CanonicalHeaderKey(t.Key)], t.Value)
	}
	return n, err
}

// rejectTrailers answers a request whose trailers the codec rejected, as
// Envoy's codecs do: HTTP/1 with 400 (the response has not started),
// HTTP/2 by resetting the stream. It reports whether it did.
func (b *directBody) rejectTrailers(dw *directWriter, r *http.Request) bool {
	if b == nil || b.reject == "" {
		return false
	}
	b.l.g.log.Debugf("http", "%s %s: rejecting the request: a trailer name contains an underscore (%s)", r.Method, r.RequestURI, b.reject)
	if r.ProtoMajor == 2 {
		panic(http.ErrAbortHandler)
	}
	dw.Header().Set("connection", "close")
	dw.local(http.StatusBadRequest, http.StatusText(http.StatusBadRequest))
	return true
}

// upstreamTrailers reports whether Envoy's codec towards the cluster's
// hosts carries trailers: HTTP/2 always, HTTP/1 only with its
// enable_trailers (request trailers are then sent, response trailers
// read); otherwise the HTTP/1 client codec leaves request trailers out
// and ignores response trailers. A protocol chosen at run time
// (auto_config, use_downstream_protocol_config) may be HTTP/2, so they
// pass. The gateway itself always speaks HTTP/1.1 upstream and sends
// trailers when this holds.
func upstreamTrailers(cl *clusterv3.Cluster) bool {
	//nolint:staticcheck // the deprecated cluster-level options still configure Envoy
	if cl.GetHttp2ProtocolOptions() != nil || cl.GetHttpProtocolOptions().GetEnableTrailers() {
		return true
	}
	for _, v := range cl.GetTypedExtensionProtocolOptions() {
		m, err := v.UnmarshalNew()
		if err != nil {
			continue
		}
		o, ok := m.(*upstreamhttpv3.HttpProtocolOptions)
		if !ok {
			continue
		}
		if e := o.GetExplicitHttpConfig(); e != nil {
			return e.GetHttp2ProtocolOptions() != nil || e.GetHttpProtocolOptions().GetEnableTrailers()
		}
		if o.GetAutoConfig() != nil || o.GetUseDownstreamProtocolConfig() != nil {
			return true
		}
	}
	return false
}

// dropTrailers makes resp carry no trailers to the proxy that copies it:
// net/http fills resp.Trailer when the body ends, so the body clears it
// again then.
func dropTrailers(resp *http.Response) {
	resp.Trailer = nil
	resp.Body = &trailerDropper{ReadCloser: resp.Body, resp: resp}
}

type trailerDropper struct {
	io.ReadCloser
	resp *http.Response
}

func (t *trailerDropper) Read(p []byte) (int, error) {
	n, err := t.ReadCloser.Read(p)
	if err != nil {
		t.resp.Trailer = nil
	}
	return n, err
}

func (t *trailerDropper) Close() error {
	err := t.ReadCloser.Close()
	t.resp.Trailer = nil
	return err
}
