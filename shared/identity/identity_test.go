package identity

import (
	"reflect"
	"strings"
	"testing"
)

func TestEncode(t *testing.T) {
	tests := []struct {
		name string
		id   Identity
		want string
	}{
		{"jwt", Identity{Method: MethodJWT, Subject: "alice", Issuer: "https://idp.example.com", Provider: "corp", Roles: []string{"admin", "dev"}},
			`{"v":1,"m":"jwt","s":"alice","i":"https://idp.example.com","p":"corp","r":["admin","dev"]}`},
		{"key-auth", Identity{Method: MethodKeyAuth, Consumer: "billing-service", Provider: "keys"},
			`{"v":1,"m":"key-auth","p":"keys","c":"billing-service"}`},
		{"escapes", Identity{Method: MethodJWT, Subject: "a\"b\\c\n", Roles: []string{"x,y", ""}},
			`{"v":1,"m":"jwt","s":"a\"b\\c\n","r":["x,y",""]}`},
		{"empty roles left out", Identity{Method: MethodJWT, Subject: "s", Roles: []string{}},
			`{"v":1,"m":"jwt","s":"s"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := string(Encode(&tt.id)); got != tt.want {
				t.Errorf("Encode(%+v) = %s, want %s", tt.id, got, tt.want)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	tests := []Identity{
		{Method: MethodJWT, Subject: "alice", Issuer: "https://idp", Provider: "p", Consumer: "c", Roles: []string{"a", "b"}},
		{Method: MethodKeyAuth, Consumer: "svc"},
		{Method: MethodJWT, Subject: "ünïcode \u2028 \x00 \"quoted\""},
	}
	for _, id := range tests {
		got, err := Decode(Encode(&id))
		if err != nil || !reflect.DeepEqual(got, id) {
			t.Errorf("Decode(Encode(%+v)) = %+v, %v; want the same identity, nil", id, got, err)
		}
	}
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Identity
		wantErr string
	}{
		{"unknown fields ignored", `{"v":1,"m":"jwt","s":"a","exp":123,"x":{"y":[1]}}`,
			Identity{Method: "jwt", Subject: "a"}, ""},
		{"any field order", `{"s":"a","r":["r1"],"m":"jwt","v":1}`,
			Identity{Method: "jwt", Subject: "a", Roles: []string{"r1"}}, ""},
		{"empty roles", `{"v":1,"m":"jwt","s":"a","r":[]}`,
			Identity{Method: "jwt", Subject: "a"}, ""},

		{"empty", ``, Identity{}, "identity: not valid JSON"},
		{"garbage", "\x00\xff{", Identity{}, "identity: not valid JSON"},
		{"truncated", `{"v":1,"m":"jwt"`, Identity{}, "identity: not valid JSON"},
		{"invalid UTF-8", "{\"v\":1,\"m\":\"jwt\",\"s\":\"\x8e\"}", Identity{}, "identity: not valid UTF-8"},
		{"array", `[1]`, Identity{}, "identity: not a JSON object"},
		{"string", `"alice"`, Identity{}, "identity: not a JSON object"},
		{"no version", `{"m":"jwt","s":"a"}`, Identity{}, "identity: no version"},
		{"newer version", `{"v":2,"m":"jwt","s":"a"}`, Identity{}, "identity: unsupported version 2"},
		{"version as string", `{"v":"1","m":"jwt","s":"a"}`, Identity{}, `identity: unsupported version "1"`},
		{"no method", `{"v":1,"s":"a"}`, Identity{}, "identity: method is empty"},
		{"no subject nor consumer", `{"v":1,"m":"jwt","i":"x"}`, Identity{}, "identity: neither subject nor consumer is set"},
		{"subject not a string", `{"v":1,"m":"jwt","s":5}`, Identity{}, `identity: field "s" is not a string`},
		{"roles not an array", `{"v":1,"m":"jwt","s":"a","r":"admin"}`, Identity{}, `identity: field "r" is not an array`},
		{"roles with a number", `{"v":1,"m":"jwt","s":"a","r":["x",1]}`, Identity{}, `identity: field "r" holds a non-string`},
		{"duplicate subject", `{"v":1,"m":"jwt","s":"a","s":"admin"}`, Identity{}, `identity: duplicate field "s"`},
		{"duplicate version", `{"v":1,"v":1,"m":"jwt","s":"a"}`, Identity{}, `identity: duplicate field "v"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Decode([]byte(tt.in))
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if gotErr != tt.wantErr || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Decode(%q) = %+v, %q; want %+v, %q", tt.in, got, gotErr, tt.want, tt.wantErr)
			}
		})
	}
}

// TestDecodeOwnsItsInput pins that the decoded strings do not alias the
// input buffer, which the host or the caller may reuse.
func TestDecodeOwnsItsInput(t *testing.T) {
	t.Parallel()
	b := []byte(`{"v":1,"m":"jwt","s":"alice"}`)
	id, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	copy(b, strings.Repeat("x", len(b)))
	if id.Subject != "alice" {
		t.Errorf("Subject after overwriting the input = %q, want %q", id.Subject, "alice")
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"v":1,"m":"jwt","s":"alice","r":["a"]}`))
	f.Add([]byte(`{"v":1,"m":"key-auth","c":"x","zz":[{}]}`))
	f.Add([]byte(`{"v":2}`))
	f.Add([]byte("\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		id, err := Decode(b)
		if err != nil {
			return
		}
		// Whatever Decode accepts, the encoding of it reads back the same.
		again, err := Decode(Encode(&id))
		if err != nil {
			t.Fatalf("Decode(Encode(Decode(%q))) error = %v", b, err)
		}
		if !reflect.DeepEqual(again, id) || string(Encode(&again)) != string(Encode(&id)) {
			t.Fatalf("Decode(%q) = %+v does not round-trip: %+v", b, id, again)
		}
	})
}

func TestValidate(t *testing.T) {
	tests := []struct {
		id   Identity
		want string
	}{
		{Identity{Method: MethodJWT, Subject: "a"}, ""},
		{Identity{Method: MethodKeyAuth, Consumer: "c"}, ""},
		{Identity{Subject: "a"}, "identity: method is empty"},
		{Identity{Method: MethodJWT}, "identity: neither subject nor consumer is set"},
	}
	for _, tt := range tests {
		got := ""
		if err := tt.id.Validate(); err != nil {
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("(%+v).Validate() = %q, want %q", tt.id, got, tt.want)
		}
	}
}

func TestHeaders(t *testing.T) {
	tests := []struct {
		name string
		id   Identity
		want [][2]string
	}{
		{"all", Identity{Method: MethodJWT, Subject: "alice", Consumer: "web", Roles: []string{"admin", "dev"}},
			[][2]string{{"x-user-id", "alice"}, {"x-user-roles", "admin,dev"}, {"x-consumer", "web"}}},
		{"consumer only", Identity{Method: MethodKeyAuth, Consumer: "svc"},
			[][2]string{{"x-consumer", "svc"}}},
		{"unsafe values left out", Identity{Method: MethodJWT, Subject: "a\r\nx-admin: 1", Consumer: " padded",
			Roles: []string{"ok", "a,b", "bad\n", "", "also ok"}},
			[][2]string{{"x-user-roles", "ok,also ok"}}},
		{"no roles survive", Identity{Method: MethodJWT, Subject: "a", Roles: []string{"a,b"}},
			[][2]string{{"x-user-id", "a"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.id.Headers(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("(%+v).Headers() = %q, want %q", tt.id, got, tt.want)
			}
		})
	}
}

func TestStripList(t *testing.T) {
	tests := []struct {
		configured []string
		want       []string
	}{
		{nil, []string{"x-user-id", "x-user-roles", "x-consumer", "x-consumer-permissions"}},
		{[]string{"X-Email", "x-user-id", "", "x-email"}, []string{"x-user-id", "x-user-roles", "x-consumer", "x-consumer-permissions", "x-email"}},
	}
	for _, tt := range tests {
		if got := StripList(tt.configured...); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("StripList(%q) = %q, want %q", tt.configured, got, tt.want)
		}
	}
}

func TestDefaultHeadersIsACopy(t *testing.T) {
	t.Parallel()
	DefaultHeaders()[0] = "changed"
	if got := DefaultHeaders()[0]; got != "x-user-id" {
		t.Errorf("DefaultHeaders()[0] after a caller changed its copy = %q, want x-user-id", got)
	}
}

func BenchmarkDecode(b *testing.B) {
	enc := Encode(&Identity{Method: MethodJWT, Subject: "alice", Issuer: "https://idp.example.com", Roles: []string{"admin", "dev"}})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(enc); err != nil {
			b.Fatal(err)
		}
	}
}
