//go:build !wasm

package identity

import (
	"reflect"
	"testing"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"

	"github.com/concierge-wasm/concierge/shared/internal/proxytesting"
)

// The tests in this file use the SDK's process-global emulator, so they do
// not run in parallel.

func TestSetGet(t *testing.T) {
	want := Identity{Method: MethodJWT, Subject: "alice", Issuer: "https://idp", Roles: []string{"admin"}}
	var got Identity
	var ok bool
	var setErr, getErr error
	s := proxytesting.NewStream(t, nil, func() {
		setErr = Set(&want)
		got, ok, getErr = Get()
	})
	if setErr != nil || getErr != nil {
		t.Fatalf("Set() error = %v, Get() error = %v", setErr, getErr)
	}
	if !ok || !reflect.DeepEqual(got, want) {
		t.Errorf("Get() after Set(%+v) = %+v, %v; want the same identity, true", want, got, ok)
	}
	raw, err := s.Host.GetProperty([]string{Property})
	if wantRaw := string(Encode(&want)); err != nil || string(raw) != wantRaw {
		t.Errorf("host property %q = %s, %v; want %s", Property, raw, err, wantRaw)
	}
}

func TestSetRejectsIncomplete(t *testing.T) {
	var err error
	proxytesting.NewStream(t, nil, func() { err = Set(&Identity{Method: MethodJWT}) })
	if err == nil {
		t.Error("Set(identity without subject or consumer) error = nil, want an error")
	}
}

func TestGet(t *testing.T) {
	tests := []struct {
		name    string
		props   []proxytesting.Property
		want    Identity
		wantOK  bool
		wantErr string
	}{
		{"absent", nil, Identity{}, false, ""},
		{"set by an earlier filter",
			[]proxytesting.Property{{Path: []string{Property}, Value: []byte(`{"v":1,"m":"key-auth","c":"svc"}`)}},
			Identity{Method: MethodKeyAuth, Consumer: "svc"}, true, ""},
		{"garbage",
			[]proxytesting.Property{{Path: []string{Property}, Value: []byte("alice")}},
			Identity{}, false, "identity: not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got Identity
			var ok bool
			var err error
			proxytesting.NewStream(t, nil, func() { got, ok, err = Get() }, tt.props...)
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if !reflect.DeepEqual(got, tt.want) || ok != tt.wantOK || gotErr != tt.wantErr {
				t.Errorf("Get() = %+v, %v, %q; want %+v, %v, %q", got, ok, gotErr, tt.want, tt.wantOK, tt.wantErr)
			}
		})
	}
}

func TestStripAndSetHeaders(t *testing.T) {
	var stripErr, setErr error
	id := Identity{Method: MethodJWT, Subject: "alice", Roles: []string{"dev"}}
	s := proxytesting.NewStream(t, [][2]string{
		{":path", "/"},
		{"x-user-id", "mallory"},
		{"x-consumer", "forged"},
		{"X-Email", "forged@example.com"},
		{"accept", "*/*"},
	}, func() {
		stripErr = Strip(StripList("x-email"))
		setErr = SetHeaders(&id)
	})
	if stripErr != nil || setErr != nil {
		t.Fatalf("Strip() error = %v, SetHeaders() error = %v", stripErr, setErr)
	}
	want := [][2]string{{":path", "/"}, {"accept", "*/*"}, {"x-user-id", "alice"}, {"x-user-roles", "dev"}}
	if got := s.Host.GetCurrentRequestHeaders(s.ID); !reflect.DeepEqual(got, want) {
		t.Errorf("request headers after Strip and SetHeaders = %q, want %q", got, want)
	}
}

func TestScreenRequestHeaders(t *testing.T) {
	headers := [][2]string{
		{":path", "/"},
		{"x_user_id", "admin"},
		{"x-user_roles", "reader,admin"},
		{"x-email", "forged@example.com"},
		{"accept", "*/*"},
	}
	want := [][2]string{{":path", "/"}, {"accept", "*/*"}}
	for _, action := range []SpoofAction{StripSpoofed, RejectSpoofed} {
		t.Run(action.String(), func(t *testing.T) {
			var rest [][2]string
			var spoofed []string
			var reject bool
			var err error
			s := proxytesting.NewStream(t, headers, func() {
				rest, spoofed, reject, err = NewGuard(action, "x_email").ScreenRequestHeaders(headers)
			})
			if err != nil {
				t.Fatalf("ScreenRequestHeaders() error = %v", err)
			}
			if !reflect.DeepEqual(rest, want) {
				t.Errorf("ScreenRequestHeaders() rest = %q, want %q", rest, want)
			}
			if wantSpoofed := []string{"x_user_id", "x-user_roles", "x-email"}; !reflect.DeepEqual(spoofed, wantSpoofed) {
				t.Errorf("ScreenRequestHeaders() spoofed = %q, want %q", spoofed, wantSpoofed)
			}
			if reject != (action == RejectSpoofed) {
				t.Errorf("ScreenRequestHeaders() reject = %v with action %v", reject, action)
			}
			if got := s.Host.GetCurrentRequestHeaders(s.ID); !reflect.DeepEqual(got, want) {
				t.Errorf("request headers after ScreenRequestHeaders = %q, want %q", got, want)
			}
		})
	}
}

func TestStripRequestTrailers(t *testing.T) {
	var spoofed []string
	var after [][2]string
	var err error
	proxytesting.NewTrailerStream(t, [][2]string{{"x-checksum", "abc"}, {"x-user-id", "admin"}, {"x_consumer", "evil"}}, func() {
		spoofed, err = NewGuard(RejectSpoofed).StripRequestTrailers()
		after, _ = proxywasm.GetHttpRequestTrailers()
	})
	if err != nil {
		t.Fatalf("StripRequestTrailers() error = %v", err)
	}
	if want := []string{"x-user-id", "x_consumer"}; !reflect.DeepEqual(spoofed, want) {
		t.Errorf("StripRequestTrailers() = %q, want %q", spoofed, want)
	}
	if want := [][2]string{{"x-checksum", "abc"}}; !reflect.DeepEqual(after, want) {
		t.Errorf("request trailers after StripRequestTrailers = %q, want %q", after, want)
	}
}
