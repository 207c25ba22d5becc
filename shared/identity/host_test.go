//go:build !wasm

package identity

import (
	"reflect"
	"testing"

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
