package identity

import (
	"reflect"
	"strings"
	"testing"

	"github.com/concierge-wasm/concierge/shared/config"
)

// spellings are header names a client may send, and whether a server that
// maps '_' and '-' to one variable (CGI, WSGI, Rack, PHP) reads each as an
// identity header some concierge filter sets.
var spellings = []struct {
	name  string
	owned bool
}{
	{"x-user-id", true},
	{"X-User-Id", true},
	{"x_user_id", true},
	{"X_USER_ID", true},
	{"x-user_id", true},
	{"x_user-id", true},
	{"x_user_roles", true},
	{"X-User_Roles", true},
	{"x_consumer", true},
	{"x-consumer_permissions", true},
	{"x_consumer_permissions", true},
	{"x_email", true}, // configured below
	{"X-EMAIL", true},
	{"x-user-idx", false},
	{"x-user", false},
	{"xuserid", false},
	{"x--user-id", false},
	{"x.user.id", false},
	{"x-user-id ", false},
	{"authorization", false},
	{"x-consumer-permission", false},
	{"", false},
}

func TestGuardOwnsEverySpelling(t *testing.T) {
	t.Parallel()
	g := NewGuard(StripSpoofed, "X-Email")
	for _, s := range spellings {
		if got := g.Owns(s.name); got != s.owned {
			t.Errorf("Owns(%q) = %v, want %v", s.name, got, s.owned)
		}
	}
}

func TestCanonicalName(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ in, want string }{
		{"x-user-id", "x-user-id"},
		{"X_User_Id", "x-user-id"},
		{"x-user_id", "x-user-id"},
		{"__", "--"},
		{"", ""},
		{"ÄB_c", "Äb-c"},
	} {
		if got := CanonicalName(tt.in); got != tt.want {
			t.Errorf("CanonicalName(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if !SameName(tt.in, tt.want) {
			t.Errorf("SameName(%q, %q) = false, want true", tt.in, tt.want)
		}
	}
	if SameName("x-user-id", "x-user-i") || SameName("x-user-id", "x-user-ie") {
		t.Error("SameName matched different names")
	}
}

func TestGuardSpoofed(t *testing.T) {
	t.Parallel()
	g := NewGuard(StripSpoofed)
	tests := []struct {
		name    string
		headers [][2]string
		want    []string
	}{
		{"none", [][2]string{{":path", "/"}, {"authorization", "Bearer x"}}, nil},
		{"underscores", [][2]string{{":path", "/"}, {"x_user_id", "admin"}, {"accept", "*/*"}, {"x_user_roles", "admin"}},
			[]string{"x_user_id", "x_user_roles"}},
		{"mixed, each name once", [][2]string{{"x-user_id", "a"}, {"x-user-id", "b"}, {"x-user_id", "c"}, {"x_consumer", "d"}},
			[]string{"x-user_id", "x-user-id", "x_consumer"}},
		{"permissions", [][2]string{{"x_consumer_permissions", "*"}}, []string{"x_consumer_permissions"}},
	}
	for _, tt := range tests {
		if got := g.Spoofed(tt.headers); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: Spoofed(%q) = %q, want %q", tt.name, tt.headers, got, tt.want)
		}
	}
}

func TestGuardNames(t *testing.T) {
	t.Parallel()
	got := NewGuard(RejectSpoofed, "X_Email", "x-email", "x-user_id").Names()
	want := []string{"x-user-id", "x-user-roles", "x-consumer", "x-consumer-permissions", "x-email"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("NewGuard(...).Names() = %q, want %q", got, want)
	}
}

func TestParseSpoofAction(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		json    string
		want    SpoofAction
		wantErr string
	}{
		{`{}`, StripSpoofed, ""},
		{`{"spoofed_identity_headers":"strip"}`, StripSpoofed, ""},
		{`{"spoofed_identity_headers":"reject"}`, RejectSpoofed, ""},
		{`{"spoofed_identity_headers":"drop"}`, StripSpoofed, `spoofed_identity_headers: must be one of "strip", "reject", got "drop"`},
	} {
		o, err := config.Parse([]byte(tt.json))
		if err != nil {
			t.Fatal(err)
		}
		got := ParseSpoofAction(o)
		gotErr := ""
		if err := o.Err(); err != nil {
			gotErr = err.Error()
		}
		if got != tt.want || gotErr != tt.wantErr {
			t.Errorf("ParseSpoofAction(%s) = %v, %q; want %v, %q", tt.json, got, gotErr, tt.want, tt.wantErr)
		}
	}
}

// benchHeaders are a typical request's headers, with nothing spoofed.
var benchHeaders = [][2]string{{":authority", "api.example.com"}, {":path", "/api/orders"}, {":method", "GET"},
	{":scheme", "https"}, {"authorization", "Bearer abc"}, {"accept", "*/*"}, {"user-agent", "curl/8"},
	{"x-request-id", "5f0c8a9e"}, {"x-forwarded-for", "10.0.0.1"}}

// BenchmarkGuardSpoofed is the cost of screening a request, against
// BenchmarkExactNames, the exact-name lookup it replaced (compare the two
// in one run).
func BenchmarkGuardSpoofed(b *testing.B) {
	g := NewGuard(StripSpoofed, "x-email")
	b.ReportAllocs()
	for b.Loop() {
		if g.Spoofed(benchHeaders) != nil {
			b.Fatal("spoofed")
		}
	}
}

func BenchmarkExactNames(b *testing.B) {
	names := StripList("x-email")
	b.ReportAllocs()
	for b.Loop() {
		for _, n := range names {
			for _, h := range benchHeaders {
				if strings.EqualFold(h[0], n) {
					b.Fatal("spoofed")
				}
			}
		}
	}
}

// FuzzGuardOwns: a header name from a client is owned exactly when what a
// CGI server makes of it (lower case, '_' as '-') is an owned name, and
// SameName agrees with CanonicalName.
func FuzzGuardOwns(f *testing.F) {
	for _, s := range spellings {
		f.Add(s.name, "x-user-id")
	}
	f.Add("X_USER_ROLES", "x_user-roles")
	g := NewGuard(StripSpoofed, "x-email")
	owned := map[string]bool{}
	for _, n := range g.Names() {
		owned[n] = true
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		cgi := strings.ReplaceAll(asciiLower(a), "_", "-")
		if got := g.Owns(a); got != owned[cgi] {
			t.Errorf("Owns(%q) = %v, want %v (%q)", a, got, owned[cgi], cgi)
		}
		if CanonicalName(a) != cgi {
			t.Errorf("CanonicalName(%q) = %q, want %q", a, CanonicalName(a), cgi)
		}
		if got, want := SameName(a, b), CanonicalName(a) == CanonicalName(b); got != want {
			t.Errorf("SameName(%q, %q) = %v, want %v", a, b, got, want)
		}
	})
}

// asciiLower lower-cases ASCII letters only, as HTTP header names are
// compared (strings.ToLower would also fold non-ASCII bytes).
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
