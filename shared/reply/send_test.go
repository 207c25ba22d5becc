//go:build !wasm

package reply

import (
	"reflect"
	"testing"

	"github.com/concierge-wasm/concierge/shared/internal/proxytesting"
)

// TestSend runs Send against the SDK's emulator. Not parallel: proxytest is
// process-global.
func TestSend(t *testing.T) {
	tests := []struct {
		name        string
		r           Replier
		headers     [][2]string
		wantID      string
		wantBody    string
		wantHeaders [][2]string
	}{
		{
			name:     "default header, JSON",
			r:        Replier{},
			headers:  [][2]string{{":path", "/"}, {"x-request-id", "5f0c"}},
			wantID:   "5f0c",
			wantBody: `{"error":"missing bearer token","requestId":"5f0c"}`,
			wantHeaders: [][2]string{
				{"content-type", "application/json"}, {"x-request-id", "5f0c"},
				{"www-authenticate", `Bearer realm="api"`},
			},
		},
		{
			name:     "custom header, problem+json",
			r:        Replier{Format: Problem, RequestIDHeader: "x-correlation-id"},
			headers:  [][2]string{{"x-correlation-id", "c-1"}, {"x-request-id", "ignored"}},
			wantID:   "c-1",
			wantBody: `{"type":"about:blank","title":"Unauthorized","status":401,"detail":"missing bearer token","requestId":"c-1"}`,
			wantHeaders: [][2]string{
				{"content-type", "application/problem+json"}, {"x-correlation-id", "c-1"},
				{"www-authenticate", `Bearer realm="api"`},
			},
		},
		{
			name:     "no request ID",
			r:        Replier{},
			headers:  [][2]string{{":path", "/"}},
			wantID:   "",
			wantBody: `{"error":"missing bearer token","requestId":""}`,
			wantHeaders: [][2]string{
				{"content-type", "application/json"}, {"www-authenticate", `Bearer realm="api"`},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var gotID string
			var sendErr error
			s := proxytesting.NewStream(t, tt.headers, func() {
				gotID, sendErr = tt.r.Send(401, "missing bearer token", [2]string{"www-authenticate", `Bearer realm="api"`})
			})
			if sendErr != nil {
				t.Fatalf("Send() error = %v", sendErr)
			}
			if gotID != tt.wantID {
				t.Errorf("Send() request ID = %q, want %q", gotID, tt.wantID)
			}
			resp := s.Host.GetSentLocalResponse(s.ID)
			if resp == nil {
				t.Fatal("Send() sent no local response")
			}
			if resp.StatusCode != 401 || resp.GRPCStatus != -1 {
				t.Errorf("Send() status = %d, gRPC status %d; want 401, -1", resp.StatusCode, resp.GRPCStatus)
			}
			if string(resp.Data) != tt.wantBody {
				t.Errorf("Send() body = %s, want %s", resp.Data, tt.wantBody)
			}
			if !reflect.DeepEqual(resp.Headers, tt.wantHeaders) {
				t.Errorf("Send() headers = %q, want %q", resp.Headers, tt.wantHeaders)
			}
		})
	}
}
