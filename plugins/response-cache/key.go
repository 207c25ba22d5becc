package main

// The cache key. It names everything the response may depend on that the
// filter knows about: scheme, authority, path, the query as configured,
// configured request headers, the verified identity when key.identity is on,
// and — once the origin named them with Vary — the varied request headers.
// Everything else (x-forwarded-host, x-original-url, …) is not in the key;
// README.md lists the headers commonly abused for poisoning.

import (
	"sort"
	"strings"
)

// queryMode is key.query.
type queryMode uint8

const (
	queryAll  queryMode = iota // every parameter, sorted
	queryNone                  // no query at all
	queryList                  // only the named parameters, sorted
)

// keySpec is the key part of the configuration.
type keySpec struct {
	query     queryMode
	queryKeep []string // for queryList
	headers   []string // lower-case
	identity  bool
}

// keyRequest is what the key reads of a request.
type keyRequest struct {
	scheme, authority, path string // path is :path, query included
	header                  func(name string) string
	identity                []byte // encoded verified identity; nil when none
}

// primaryKey builds the key of a request before Vary is known. Fields are
// separated by bytes that cannot occur in them (\n cannot be in a header
// value Envoy accepts), so two requests can share a key only if they agree
// on every field.
func primaryKey(dst []byte, spec *keySpec, r *keyRequest) []byte {
	dst = append(dst, strings.ToLower(r.scheme)...)
	dst = append(dst, '\n')
	dst = append(dst, strings.ToLower(r.authority)...)
	dst = append(dst, '\n')
	path, query, _ := strings.Cut(r.path, "?")
	if i := strings.IndexByte(path, '#'); i >= 0 {
		path = path[:i]
	}
	dst = append(dst, path...)
	if q := canonicalQuery(spec, query); q != "" {
		dst = append(dst, '?')
		dst = append(dst, q...)
	}
	for _, h := range spec.headers {
		dst = append(dst, '\n')
		dst = append(dst, h...)
		dst = append(dst, ':')
		if r.header != nil {
			dst = append(dst, r.header(h)...)
		}
	}
	if spec.identity {
		dst = append(dst, "\nidentity:"...)
		dst = append(dst, r.identity...)
	}
	return dst
}

// canonicalQuery orders the query's parameters so that ?a=1&b=2 and
// ?b=2&a=1 share an entry. The order of repeated names is kept (stable
// sort): ?a=1&a=2 may mean something else than ?a=2&a=1.
func canonicalQuery(spec *keySpec, q string) string {
	if i := strings.IndexByte(q, '#'); i >= 0 {
		q = q[:i]
	}
	if q == "" || spec.query == queryNone {
		return ""
	}
	params := strings.Split(q, "&")
	kept := params[:0]
	for _, p := range params {
		if p == "" {
			continue
		}
		if spec.query == queryList {
			name, _, _ := strings.Cut(p, "=")
			keep := false
			for _, k := range spec.queryKeep {
				if name == k {
					keep = true
					break
				}
			}
			if !keep {
				continue
			}
		}
		kept = append(kept, p)
	}
	sort.SliceStable(kept, func(i, j int) bool {
		a, _, _ := strings.Cut(kept[i], "=")
		b, _, _ := strings.Cut(kept[j], "=")
		return a < b
	})
	return strings.Join(kept, "&")
}

// varyNames lists the request header names in Vary field values,
// lower-cased, sorted and without duplicates. ok is false for Vary: *.
func varyNames(values []string) (names []string, ok bool) {
	for _, v := range values {
		for _, f := range strings.Split(v, ",") {
			f = strings.ToLower(strings.TrimSpace(f))
			if f == "" {
				continue
			}
			if f == "*" {
				return nil, false
			}
			names = append(names, f)
		}
	}
	sort.Strings(names)
	out := names[:0]
	for i, n := range names {
		if i == 0 || n != names[i-1] {
			out = append(out, n)
		}
	}
	return out, true
}

// variantKey extends a primary key with the normalised values of the varied
// request headers (RFC 9111 §4.1): whitespace around list members removed
// and runs of spaces folded, so "gzip, br" and "gzip,br" share a variant.
func variantKey(dst, primary []byte, names []string, header func(string) string) []byte {
	dst = append(dst, primary...)
	dst = append(dst, "\nvary"...)
	for _, n := range names {
		dst = append(dst, '\n')
		dst = append(dst, n...)
		dst = append(dst, ':')
		var v string
		if header != nil {
			v = header(n)
		}
		dst = appendNormalizedValue(dst, v)
	}
	return dst
}

func appendNormalizedValue(dst []byte, v string) []byte {
	first := true
	for _, member := range strings.Split(v, ",") {
		member = strings.Join(strings.Fields(member), " ")
		if member == "" {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = append(dst, member...)
	}
	return dst
}

// uriOf is the part of a key that invalidation and purges name: scheme,
// authority and path, without query, headers or identity, so that a write
// to /items/1 drops every variant of /items/1 for every user.
func uriOf(scheme, authority, path string) []byte {
	path, _, _ = strings.Cut(path, "?")
	if i := strings.IndexByte(path, '#'); i >= 0 {
		path = path[:i]
	}
	b := make([]byte, 0, len(scheme)+len(authority)+len(path)+2)
	b = append(b, strings.ToLower(scheme)...)
	b = append(b, '\n')
	b = append(b, strings.ToLower(authority)...)
	b = append(b, '\n')
	return append(b, path...)
}

// hash64 is FNV-1a, non-zero (0 marks a free slot). It only picks slots:
// the full key is stored with the entry and compared on every lookup, so a
// collision costs a displaced entry, never a wrong answer.
func hash64(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	if h == 0 {
		return 1
	}
	return h
}

// poisoningHeaders are request headers that frameworks commonly read to
// build URLs or pick methods, yet no cache key holds: a response to a
// request carrying one may reflect it (an attacker's host in a link, say),
// and storing it would serve the attacker's variant to everyone.
var poisoningHeaders = [...]string{
	"x-forwarded-host", "x-forwarded-server", "x-forwarded-scheme", "x-forwarded-port", "x-forwarded-prefix",
	"x-host", "x-original-host", "x-original-url", "x-rewrite-url",
	"x-http-method-override", "x-http-method", "x-method-override", "forwarded",
}

// unkeyedHeader returns the first poisoning header a request carries that
// the key does not hold (key.headers), or "".
func unkeyedHeader(has func(string) bool, keyed []string) string {
outer:
	for _, h := range poisoningHeaders {
		if !has(h) {
			continue
		}
		for _, k := range keyed {
			if k == h {
				continue outer
			}
		}
		return h
	}
	return ""
}

// Purge blooms: each index record carries a 64-bit Bloom filter of the
// entry's tags and path prefixes, so a tag or prefix purge reads only the
// slots that may match instead of every stored body.

func bloomBits(item []byte) uint64 {
	h := hash64(item)
	return 1<<(h%64) | 1<<((h>>32)%64)
}

// tagBloom is the bloom of one purge tag.
func tagBloom(tag string) uint64 { return bloomBits(append([]byte("t\n"), tag...)) }

// prefixBloom is the bloom of a path prefix under a URI's scheme and
// authority (uri as made by uriOf, without the path).
func prefixBloom(origin []byte, prefix string) uint64 {
	b := append(append([]byte("p\n"), origin...), prefix...)
	return bloomBits(b)
}

// pathPrefixes calls f with every segment prefix of a path: "/", "/a",
// "/a/b" for "/a/b".
func pathPrefixes(path string, f func(string)) {
	f("/")
	for i := 1; i < len(path); i++ {
		if path[i] == '/' {
			f(path[:i])
		}
	}
	if path != "/" && path != "" {
		f(strings.TrimSuffix(path, "/"))
	}
}

// splitURI splits a uriOf value into its scheme-and-authority part (with
// the trailing separator) and its path.
func splitURI(uri []byte) (origin []byte, path string) {
	i := strings.IndexByte(string(uri), '\n')
	if i < 0 {
		return nil, string(uri)
	}
	j := strings.IndexByte(string(uri[i+1:]), '\n')
	if j < 0 {
		return nil, string(uri)
	}
	return uri[:i+1+j+1], string(uri[i+1+j+1:])
}

// purgeBloom is an entry's bloom: its tags and its path prefixes.
func purgeBloom(e *entry) uint64 {
	var b uint64
	for _, t := range e.tags {
		b |= tagBloom(t)
	}
	origin, path := splitURI(e.uri)
	if origin != nil {
		pathPrefixes(path, func(p string) { b |= prefixBloom(origin, p) })
	}
	return b
}

// underPrefix reports whether a path is prefix itself or below it, by
// whole segments: /api/products covers /api/products/1, not /api/productsX.
func underPrefix(path, prefix string) bool {
	prefix = strings.TrimSuffix(prefix, "/")
	if prefix == "" {
		return true
	}
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}
