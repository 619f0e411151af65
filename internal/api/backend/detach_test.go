package backend

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestDetachReader(t *testing.T) {
	for _, tc := range []struct {
		in       string
		want     string
		detached bool
	}{
		{"hello", "hello", false},
		{"ab\x10\x11cd", "ab", true},
		{"a\x10b", "a\x10b", false},    // broken match is released
		{"\x10\x10\x11", "\x10", true}, // a restart of the sequence
		{"x\x10", "x\x10", false},      // stdin ends mid-sequence: released
	} {
		for _, oneByte := range []bool{false, true} {
			var r io.Reader = strings.NewReader(tc.in)
			if oneByte {
				r = iotest.OneByteReader(r)
			}
			got, err := io.ReadAll(NewDetachReader(r, DefaultDetachKeys))
			if tc.detached != errors.Is(err, ErrDetached) || (!tc.detached && err != nil) {
				t.Errorf("%q (oneByte=%v): err = %v", tc.in, oneByte, err)
			}
			if string(got) != tc.want {
				t.Errorf("%q (oneByte=%v): got %q, want %q", tc.in, oneByte, got, tc.want)
			}
		}
	}
}
