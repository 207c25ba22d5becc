package identity

import (
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/tidwall/gjson"

	"github.com/concierge-wasm/concierge/shared/jsonenc"
)

// Property is the stream property that holds the encoded Identity. Envoy
// keeps it as filter state `wasm.` + Property for the rest of the stream.
const Property = "concierge.identity"

// Methods of verification.
const (
	MethodJWT     = "jwt"
	MethodKeyAuth = "key-auth"
)

// version is the encoding's version. Raise it only for a change that older
// readers must not misread; new optional fields do not need it.
const version = 1

// Identity is a caller the gateway has verified.
type Identity struct {
	// Method is how it was verified: MethodJWT or MethodKeyAuth.
	Method string
	// Subject is who the caller is: the JWT `sub`, or the key's owner.
	Subject string
	// Issuer is the JWT `iss`; "" for API keys.
	Issuer string
	// Provider is the name of the configured provider (JWT issuer entry,
	// key set) that verified the credential.
	Provider string
	// Consumer is the client application, when the credential names one.
	Consumer string
	// Roles are the caller's roles or scopes, in credential order.
	Roles []string
}

// Validate reports whether id is complete enough to pass on: it must say how
// it was verified and name a subject or a consumer.
func (id *Identity) Validate() error {
	switch {
	case id.Method == "":
		return errors.New("identity: method is empty")
	case id.Subject == "" && id.Consumer == "":
		return errors.New("identity: neither subject nor consumer is set")
	}
	return nil
}

// Append appends the encoding of id to dst: a JSON object with one-letter
// keys in a fixed order, empty fields left out, e.g.
//
//	{"v":1,"m":"jwt","s":"alice","i":"https://idp.example.com","r":["admin"]}
//
// The same identity always encodes to the same bytes, so the encoding can be
// compared or hashed.
func Append(dst []byte, id *Identity) []byte {
	dst = append(dst, `{"v":`...)
	dst = strconv.AppendInt(dst, version, 10)
	dst = appendField(dst, "m", id.Method)
	dst = appendField(dst, "s", id.Subject)
	dst = appendField(dst, "i", id.Issuer)
	dst = appendField(dst, "p", id.Provider)
	dst = appendField(dst, "c", id.Consumer)
	if len(id.Roles) > 0 {
		dst = append(dst, `,"r":[`...)
		for i, r := range id.Roles {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = jsonenc.AppendString(dst, r)
		}
		dst = append(dst, ']')
	}
	return append(dst, '}')
}

func appendField(dst []byte, key, value string) []byte {
	if value == "" {
		return dst
	}
	dst = append(dst, ',', '"')
	dst = append(dst, key...)
	dst = append(dst, '"', ':')
	return jsonenc.AppendString(dst, value)
}

// Encode returns the encoding of id (see Append).
func Encode(id *Identity) []byte {
	return Append(make([]byte, 0, encodedSize(id)), id)
}

func encodedSize(id *Identity) int {
	n := 64 + len(id.Method) + len(id.Subject) + len(id.Issuer) + len(id.Provider) + len(id.Consumer)
	for _, r := range id.Roles {
		n += len(r) + 3
	}
	return n
}

// Decode parses an encoding made by Append. It rejects anything else with an
// error (and never panics): the property may have been set by another
// filter, or an older or newer one. Unknown fields are ignored so that an
// older reader accepts what a newer writer adds.
func Decode(b []byte) (Identity, error) {
	s := string(b)
	if !gjson.Valid(s) {
		return Identity{}, errors.New("identity: not valid JSON")
	}
	// Append never writes invalid UTF-8; refusing it keeps every decoded
	// string safe to log and re-encode unchanged.
	if !utf8.ValidString(s) {
		return Identity{}, errors.New("identity: not valid UTF-8")
	}
	res := gjson.Parse(s)
	if !res.IsObject() {
		return Identity{}, errors.New("identity: not a JSON object")
	}
	var id Identity
	var err error
	var seen uint8
	res.ForEach(func(k, v gjson.Result) bool {
		var bit uint8
		var dst *string
		switch k.Str {
		case "v":
			bit = 1 << 0
			if v.Type != gjson.Number || v.Raw != strconv.Itoa(version) {
				err = errors.New("identity: unsupported version " + v.Raw)
			}
		case "m":
			bit, dst = 1<<1, &id.Method
		case "s":
			bit, dst = 1<<2, &id.Subject
		case "i":
			bit, dst = 1<<3, &id.Issuer
		case "p":
			bit, dst = 1<<4, &id.Provider
		case "c":
			bit, dst = 1<<5, &id.Consumer
		case "r":
			bit = 1 << 6
			id.Roles, err = decodeRoles(v)
		default:
			return true
		}
		if seen&bit != 0 {
			err = errors.New("identity: duplicate field " + strconv.Quote(k.Str))
		}
		seen |= bit
		if dst != nil {
			if v.Type != gjson.String {
				err = errors.New("identity: field " + strconv.Quote(k.Str) + " is not a string")
			}
			*dst = v.Str
		}
		return err == nil
	})
	if err != nil {
		return Identity{}, err
	}
	if seen&1 == 0 {
		return Identity{}, errors.New("identity: no version")
	}
	if err := id.Validate(); err != nil {
		return Identity{}, err
	}
	return id, nil
}

func decodeRoles(v gjson.Result) ([]string, error) {
	if !v.IsArray() {
		return nil, errors.New(`identity: field "r" is not an array`)
	}
	var roles []string
	var err error
	v.ForEach(func(_, e gjson.Result) bool {
		if e.Type != gjson.String {
			err = errors.New(`identity: field "r" holds a non-string`)
			return false
		}
		roles = append(roles, e.Str)
		return true
	})
	return roles, err
}

// Headers lists the request headers that carry id to the upstream, from
// DefaultHeaders: x-user-id (Subject), x-user-roles (Roles, comma-joined)
// and x-consumer (Consumer); empty ones are left out. A value that cannot
// travel in a header is left out rather than mangled: any with control
// characters, and any role containing a comma, which the list syntax could
// not tell from two roles.
func (id *Identity) Headers() [][2]string {
	h := make([][2]string, 0, 3)
	if isHeaderValue(id.Subject) {
		h = append(h, [2]string{"x-user-id", id.Subject})
	}
	if roles := joinRoles(id.Roles); roles != "" {
		h = append(h, [2]string{"x-user-roles", roles})
	}
	if isHeaderValue(id.Consumer) {
		h = append(h, [2]string{"x-consumer", id.Consumer})
	}
	return h
}

func joinRoles(roles []string) string {
	var b strings.Builder
	for _, r := range roles {
		if !isHeaderValue(r) || strings.IndexByte(r, ',') >= 0 {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(r)
	}
	return b.String()
}

// isHeaderValue reports whether s is a non-empty RFC 9110 field value
// without leading or trailing whitespace, which proxies would trim.
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

// DefaultHeaders are the identity headers some concierge filter sets:
// x-user-id, x-user-roles and x-consumer (Identity.Headers), and key-auth's
// x-consumer-permissions. Every filter that owns identity headers removes
// all of them from the client's request (see Guard), not only its own: an
// upstream behind a chain with one auth filter must not trust a header the
// other would set.
func DefaultHeaders() []string {
	return []string{"x-user-id", "x-user-roles", "x-consumer", "x-consumer-permissions"}
}

// StripList returns DefaultHeaders plus the configured identity headers
// (e.g. jwt-auth's claim_to_headers targets), lower-cased and without
// duplicates. Build it once, at configuration time.
func StripList(configured ...string) []string {
	list := DefaultHeaders()
	for _, h := range configured {
		h = strings.ToLower(h)
		dup := false
		for _, e := range list {
			if e == h {
				dup = true
				break
			}
		}
		if !dup && h != "" {
			list = append(list, h)
		}
	}
	return list
}
