package rules

// NormalizePath returns the form of an HTTP :path that rules compare:
//
//   - the query string is dropped; a '#' is an ordinary byte, not the
//     start of a fragment (clients never send fragments; a '#' in a :path
//     is an attack, and a proxy that lets it through forwards it, so the
//     upstream reads the path past it: "/open/x#/../../admin" is "/admin");
//   - backslashes become slashes, as Envoy's normalize_path does, because
//     some upstreams treat them as separators;
//   - percent-encoded unreserved characters (RFC 3986 §2.3) are decoded and
//     the hex digits of the remaining escapes upper-cased, so "%2e%2E" is a
//     dot segment and "%2f" equals "%2F"; a '%' that starts no escape is
//     written "%25";
//   - runs of slashes are merged and "." and ".." segments removed
//     (RFC 3986 §5.2.4), never climbing above the root.
//
// A path that does not start with a slash ("*" for OPTIONS) is returned with
// only its query dropped. Paths already in normal form, which is nearly all
// of them, are returned as a substring of p without allocating.
func NormalizePath(p string) string {
	// A plain loop: strings.IndexAny builds a byte set on every call.
	for i := 0; i < len(p); i++ {
		if p[i] == '?' {
			p = p[:i]
			break
		}
	}
	if len(p) == 0 || p[0] != '/' && p[0] != '\\' {
		return p
	}
	if !needsNormalizing(p) {
		return p
	}
	return normalize(p)
}

// needsNormalizing is the allocation-free test for the fast path.
func needsNormalizing(p string) bool {
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '%', '\\':
			return true
		case '/':
			if i+1 < len(p) {
				switch p[i+1] {
				case '/':
					return true
				case '.':
					// "/." or "/.." as a whole segment
					rest := p[i+2:]
					if rest == "" || rest[0] == '/' ||
						rest[0] == '.' && (len(rest) == 1 || rest[1] == '/') {
						return true
					}
				}
			}
		}
	}
	return false
}

func normalize(p string) string {
	dec := make([]byte, 0, len(p))
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '\\':
			dec = append(dec, '/')
		case c == '%' && i+2 < len(p) && isHex(p[i+1]) && isHex(p[i+2]):
			b := unhex(p[i+1])<<4 | unhex(p[i+2])
			if isUnreserved(b) {
				dec = append(dec, b)
			} else {
				dec = append(dec, '%', upperHex(p[i+1]), upperHex(p[i+2]))
			}
			i += 2
		case c == '%':
			// A stray '%' is a literal percent sign. Writing it as "%25"
			// keeps the result stable: "%%61" must not become "%a" and then,
			// normalized again, "%A".
			dec = append(dec, "%25"...)
		default:
			dec = append(dec, c)
		}
	}

	out := make([]byte, 0, len(dec))
	// dec[0] is '/'; walk the segments after it.
	for start := 1; start <= len(dec); {
		stop := start
		for stop < len(dec) && dec[stop] != '/' {
			stop++
		}
		seg := dec[start:stop]
		last := stop >= len(dec)
		switch {
		case len(seg) == 0 || len(seg) == 1 && seg[0] == '.':
			// empty (merged slash) or "." segment: nothing to add
		case len(seg) == 2 && seg[0] == '.' && seg[1] == '.':
			if j := lastSlash(out); j >= 0 {
				out = out[:j]
			}
		default:
			out = append(out, '/')
			out = append(out, seg...)
			start = stop + 1
			continue
		}
		// A skipped or popped final segment leaves a directory path.
		if last {
			out = append(out, '/')
		}
		start = stop + 1
	}
	if len(out) == 0 {
		return "/"
	}
	return string(out)
}

func lastSlash(b []byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == '/' {
			return i
		}
	}
	return -1
}

func isUnreserved(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

func upperHex(c byte) byte {
	if c >= 'a' && c <= 'f' {
		return c - 'a' + 'A'
	}
	return c
}
