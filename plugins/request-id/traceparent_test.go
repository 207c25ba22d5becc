package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestValidTraceparent(t *testing.T) {
	t.Parallel()
	const (
		traceID  = "4bf92f3577b34da6a3ce929d0e0e4736"
		parentID = "00f067aa0ba902b7"
	)
	tests := []struct {
		in   string
		want bool
	}{
		{"00-" + traceID + "-" + parentID + "-01", true},
		{"00-" + traceID + "-" + parentID + "-00", true},
		{"00-" + traceID + "-" + parentID + "-ff", true},         // unknown flags are ignored, not rejected
		{"01-" + traceID + "-" + parentID + "-01", true},         // a future version
		{"cc-" + traceID + "-" + parentID + "-01-0a1b-ff", true}, // future fields, well formed
		{"cc-" + traceID + "-" + parentID + "-01-" + strings.Repeat("a", 256-56), true},
		{"cc-" + traceID + "-" + parentID + "-01-" + strings.Repeat("a", 256-55), false}, // 257 characters
		{"cc-" + traceID + "-" + parentID + "-01-what-the-future-holds", false},          // not hex
		{"cc-" + traceID + "-" + parentID + "-01-", false},                               // empty field
		{"cc-" + traceID + "-" + parentID + "-01-ab-", false},
		{"cc-" + traceID + "-" + parentID + "-01--ab", false},
		{"cc-" + traceID + "-" + parentID + "-01-AB", false},
		{"cc-" + traceID + "-" + parentID + "-01-ab cd", false},
		{"cc-" + traceID + "-" + parentID + `-01-ab"x=1`, false},
		{"cc-" + traceID + "-" + parentID + "-01.what", false},  // char 55 must be "-"
		{"00-" + traceID + "-" + parentID + "-01-extra", false}, // version 00 is exactly 55
		{"00-" + traceID + "-" + parentID + "-01 ", false},
		{"ff-" + traceID + "-" + parentID + "-01", false},
		{"0g-" + traceID + "-" + parentID + "-01", false},
		{"0A-" + traceID + "-" + parentID + "-01", false},
		{"00-00000000000000000000000000000000-" + parentID + "-01", false},
		{"00-" + traceID + "-0000000000000000-01", false},
		{"00-" + strings.ToUpper(traceID) + "-" + parentID + "-01", false},
		{"00-" + traceID + "-" + strings.ToUpper("00f067aa0ba902bc") + "-01", false},
		{"00-" + traceID + "-" + parentID + "-0F", false},
		{"00-" + traceID[:31] + "-" + parentID + "-01", false},
		{"00-" + traceID + "0-" + parentID + "-01", false},
		{"00-" + traceID + "-" + parentID[:15] + "-01", false},
		{"00-" + traceID + "-" + parentID + "-1", false},
		{"00_" + traceID + "-" + parentID + "-01", false},
		{"00-" + traceID + "_" + parentID + "-01", false},
		{"00-" + traceID + "-" + parentID + "_01", false},
		{"00-" + traceID[:30] + "zz-" + parentID + "-01", false},
		{"00-" + traceID + "-" + parentID + "-01\r\n", false},
		{"00-" + traceID + "-" + parentID + "-01,00-" + traceID + "-" + parentID + "-01", false},
		{"", false},
		{"00", false},
		{strings.Repeat("-", 55), false},
	}
	for _, tt := range tests {
		if got := validTraceparent(tt.in); got != tt.want {
			t.Errorf("validTraceparent(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestNewTraceparent(t *testing.T) {
	t.Parallel()
	r := seededRand(t, 7)
	seen := make(map[string]bool)
	for range 1000 {
		tp, err := newTraceparent(r)
		if err != nil {
			t.Fatalf("newTraceparent() error = %v", err)
		}
		if !validTraceparent(tp) {
			t.Fatalf("validTraceparent(newTraceparent()) = false for %q, want true", tp)
		}
		if !strings.HasPrefix(tp, "00-") || !strings.HasSuffix(tp, "-01") {
			t.Fatalf("newTraceparent() = %q, want version 00 and flags 01", tp)
		}
		if seen[tp[3:35]] {
			t.Fatalf("newTraceparent() trace-id %s twice", tp[3:35])
		}
		seen[tp[3:35]] = true
	}
	// Randomness of zeros must still give a valid header.
	tp, err := newTraceparent(bytes.NewReader(make([]byte, 24)))
	if err != nil || !validTraceparent(tp) {
		t.Errorf("newTraceparent(zeros) = %q, %v, want a valid traceparent", tp, err)
	}
}
