package client

import (
	"testing"
	"time"
)

func TestGetTimestamp(t *testing.T) {
	ref := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	for _, tc := range []struct{ in, want string }{
		{"42m", "1714976769"},
		{"0", "0"},
		{"1714976409", "1714976409"},
		{"1714976409.5", "1714976409.5"},
		{"2024-05-06", "1714953600.000000000"},
		{"2024-05-06T07", "1714978800.000000000"},
		{"2024-05-06T07:08", "1714979280.000000000"},
		{"2024-05-06T07:08:09Z", "1714979289.000000000"},
		{"2024-05-06T07:08:09.25Z", "1714979289.250000000"},
		{"2024-05-06T07:08:09+02:00", "1714972089.000000000"},
		{"2024-05-06Z", "1714953600.000000000"},
	} {
		got, err := getTimestamp(tc.in, ref)
		if err != nil || got != tc.want {
			t.Errorf("getTimestamp(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"badvalue", "2024-13-01", "1.x"} {
		if got, err := getTimestamp(in, ref); err == nil {
			t.Errorf("getTimestamp(%q) = %q, want an error", in, got)
		}
	}
	if _, err := getTimestamp("badvalue", ref); err == nil || err.Error() != `failed to parse value as time or duration: "badvalue"` {
		t.Errorf("message: %v", err)
	}
}
