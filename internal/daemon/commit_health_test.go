package daemon

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
)

func TestParseHealthcheckChange(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want *container.HealthConfig
	}{
		{"NONE", &container.HealthConfig{Test: []string{"NONE"}}},
		{"none", &container.HealthConfig{Test: []string{"NONE"}}},
		{"CMD true", &container.HealthConfig{Test: []string{"CMD-SHELL", "true"}}},
		{"cmd  wget -q -O- http://localhost/ || exit 1 ", &container.HealthConfig{Test: []string{"CMD-SHELL", "wget -q -O- http://localhost/ || exit 1"}}},
		{`CMD ["/bin/check", "--fast"]`, &container.HealthConfig{Test: []string{"CMD", "/bin/check", "--fast"}}},
		{`CMD [not json`, &container.HealthConfig{Test: []string{"CMD-SHELL", "[not json"}}},
		{"--interval=5s --timeout=2s --start-period=1m --start-interval=100ms --retries=7 CMD test -f /ok", &container.HealthConfig{
			Test: []string{"CMD-SHELL", "test -f /ok"}, Interval: 5 * time.Second, Timeout: 2 * time.Second,
			StartPeriod: time.Minute, StartInterval: 100 * time.Millisecond, Retries: 7,
		}},
		{"--interval=0s --retries=0 CMD true", &container.HealthConfig{Test: []string{"CMD-SHELL", "true"}}},
		{"-- CMD true", &container.HealthConfig{Test: []string{"CMD-SHELL", "true"}}},
	} {
		got, err := parseHealthcheck(strings.TrimSpace(tc.in))
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: got %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestParseHealthcheckChangeErrors(t *testing.T) {
	for in, msg := range map[string]string{
		"":                                 "HEALTHCHECK requires at least one argument",
		"--interval=5s":                    "HEALTHCHECK requires at least one argument",
		"NONE true":                        "HEALTHCHECK NONE takes no arguments",
		"CMD":                              "Missing command after HEALTHCHECK CMD",
		"CMD []":                           "Missing command after HEALTHCHECK CMD",
		"SHELL true":                       `Unknown type "SHELL" in HEALTHCHECK (try CMD)`,
		"--every=5s CMD true":              "Unknown flag: every",
		"--interval 5s CMD true":           "Missing a value on flag: interval",
		"--retries=-1 CMD true":            "--retries cannot be negative (-1)",
		"--retries=x CMD true":             `invalid syntax`,
		"--timeout=10us CMD true":          `Interval "timeout" cannot be less than 1ms`,
		"--interval=-1s CMD true":          `Interval "interval" cannot be less than 1ms`,
		"--interval=soon CMD true":         `invalid duration "soon"`,
		"--retries=1 --retries=2 CMD true": "Duplicate flag specified: retries",
	} {
		_, err := parseHealthcheck(in)
		if err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%q: error %v, want %q", in, err, msg)
			continue
		}
		if !errdefs.IsInvalidArgument(err) {
			t.Errorf("%q: %v is not an invalid-argument error", in, err)
		}
	}
}

func TestHealthChangesSplitsAndLastWins(t *testing.T) {
	h, rest, err := healthChanges([]string{"CMD echo hi", "HEALTHCHECK CMD false", "ENV A=1", " healthcheck --retries=2 CMD true"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"CMD echo hi", "ENV A=1"}; !reflect.DeepEqual(rest, want) {
		t.Fatalf("other changes %q, want %q", rest, want)
	}
	if want := (&container.HealthConfig{Test: []string{"CMD-SHELL", "true"}, Retries: 2}); !reflect.DeepEqual(h, want) {
		t.Fatalf("healthcheck %+v, want %+v", h, want)
	}
	if _, _, err := healthChanges([]string{"HEALTHCHECK BOGUS x"}); err == nil {
		t.Fatal("a bad HEALTHCHECK change was accepted")
	}
}

func TestMergeHealth(t *testing.T) {
	base := &container.HealthConfig{Test: []string{"CMD-SHELL", "old"}, Interval: time.Second, Timeout: 2 * time.Second, Retries: 4}
	over := &container.HealthConfig{Test: []string{"CMD-SHELL", "new"}, Interval: 3 * time.Second}
	got := mergeHealth(over, base)
	want := &container.HealthConfig{Test: []string{"CMD-SHELL", "new"}, Interval: 3 * time.Second, Timeout: 2 * time.Second, Retries: 4}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("merge %+v, want %+v", got, want)
	}
	if over.Timeout != 0 || base.Test[1] != "old" {
		t.Fatal("merge modified its arguments")
	}
	if got := mergeHealth(nil, base); !reflect.DeepEqual(got, base) || got == base {
		t.Fatalf("nil over: %+v (must be a copy of base)", got)
	}
	if got := mergeHealth(over, nil); got != over {
		t.Fatalf("nil base: %+v", got)
	}
}
