package api

import (
	"context"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/api/backend"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
)

func TestStatusForIsTheOneMapping(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("context: %w", err) }
	for _, tc := range []struct {
		err          error
		precondition int
		want         int
	}{
		{errdefs.ErrNotFound, 0, 404},
		{wrap(errdefs.ErrNotFound.WithMessage("No such container: x")), 0, 404},
		{errdefs.ErrInvalidArgument, 0, 400},
		{errdefs.ErrConflict, 0, 409},
		{errdefs.ErrAlreadyExists, 0, 409},
		{errdefs.ErrNotModified, 0, 304},
		{errdefs.ErrFailedPrecondition, 0, 409},
		{errdefs.ErrFailedPrecondition, http.StatusConflict, 409},
		{wrap(errdefs.ErrFailedPrecondition), http.StatusNotModified, 304},
		{errdefs.ErrUnauthenticated, 0, 401},
		{errdefs.ErrPermissionDenied, 0, 403},
		{errdefs.ErrNotImplemented, 0, 501},
		{errdefs.ErrUnavailable, 0, 503},
		{context.DeadlineExceeded, 0, 504},
		{errors.New("boom"), 0, 500},
		{errdefs.ErrInternal, 0, 500},
	} {
		if got := statusFor(tc.err, tc.precondition); got != tc.want {
			t.Errorf("statusFor(%v, %d) = %d, want %d", tc.err, tc.precondition, got, tc.want)
		}
	}
}

// Start and stop answer 304 for FailedPrecondition, other routes 409.
func TestPreconditionStatusPerRoute(t *testing.T) {
	s := New(Backends{Containers: preconditionBackend{}}, Options{})
	for path, want := range map[string]int{
		"/containers/x/start":   304,
		"/containers/x/stop":    304,
		"/containers/x/restart": 409,
		"/containers/x/kill":    409,
	} {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest("POST", "/v1.41"+path, nil))
		if rec.Code != want {
			t.Errorf("POST %s = %d, want %d", path, rec.Code, want)
		}
	}
}

type preconditionBackend struct{ nilContainers }

func (preconditionBackend) ContainerStart(context.Context, string) error {
	return errdefs.ErrFailedPrecondition.WithMessage("container already started")
}

func (preconditionBackend) ContainerStop(context.Context, string, stopOpts) error {
	return errdefs.ErrFailedPrecondition.WithMessage("container already stopped")
}

func (preconditionBackend) ContainerRestart(context.Context, string, stopOpts) error {
	return errdefs.ErrFailedPrecondition
}

func (preconditionBackend) ContainerKill(context.Context, string, string) error {
	return errdefs.ErrFailedPrecondition.WithMessage("Container x is not running")
}

func TestParseFiltersBothEncodings(t *testing.T) {
	for _, raw := range []string{
		`{"label":{"a=b":true,"c":true},"status":{"exited":true}}`,
		`{"label":["a=b","c"],"status":["exited"]}`,
	} {
		f, err := parseFilters(raw)
		if err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		if got := strings.Join(f.Get("label"), ","); got != "a=b,c" || !f.ExactMatch("status", "exited") || f.ExactMatch("status", "running") {
			t.Fatalf("%s parsed to %v", raw, f)
		}
		if !f.MatchKVList("label", map[string]string{"a": "b", "c": "1"}) || f.MatchKVList("label", map[string]string{"a": "x", "c": ""}) {
			t.Fatalf("%s: label matching wrong", raw)
		}
	}
	f, err := parseFilters(`{"dangling":{"true":false}}`)
	if err != nil || len(f.Get("dangling")) != 0 {
		t.Fatalf("false values must be dropped: %v %v", f, err)
	}
	if f, err := parseFilters(""); err != nil || f.Len() != 0 {
		t.Fatalf("empty: %v %v", f, err)
	}
	for _, bad := range []string{`{`, `{"a":"b"}`, `{"a":[1]}`, `[]`} {
		if _, err := parseFilters(bad); !errdefs.IsInvalidArgument(err) {
			t.Errorf("parseFilters(%s) err = %v, want invalid argument", bad, err)
		}
	}
}

func TestBoolValue(t *testing.T) {
	for v, want := range map[string]bool{"1": true, "true": true, "True": true, "TRUE": true, "yes": true,
		"0": false, "false": false, "False": false, "": false, "no": false, "none": false} {
		r := httptest.NewRequest("GET", "/x?b="+v, nil)
		if got := boolValue(r, "b"); got != want {
			t.Errorf("boolValue(%q) = %v", v, got)
		}
	}
	r := httptest.NewRequest("GET", "/x", nil)
	if !boolValueOr(r, "stream", true) || boolValueOr(httptest.NewRequest("GET", "/x?stream=0", nil), "stream", true) {
		t.Error("boolValueOr default handling")
	}
}

func TestParseTime(t *testing.T) {
	now := time.Unix(1700000000, 0)
	for in, want := range map[string]time.Time{
		"0":                    time.Unix(0, 0),
		"1700000000":           time.Unix(1700000000, 0),
		"1700000000.5":         time.Unix(1700000000, 500000000),
		"1700000000.000000001": time.Unix(1700000000, 1),
		"10m":                  now.Add(-10 * time.Minute),
		"2023-11-14T22:13:20Z": time.Unix(1700000000, 0),
	} {
		got, err := parseTime(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if got, err := parseTime("", now); err != nil || !got.IsZero() {
		t.Errorf("empty: %v %v", got, err)
	}
	if _, err := parseTime("yesterday", now); !errdefs.IsInvalidArgument(err) {
		t.Errorf("garbage: %v", err)
	}
}

func TestSplitVersion(t *testing.T) {
	for in, want := range map[string][2]string{
		"/containers/json":       {"1.41", "/containers/json"},
		"/v1.41/containers/json": {"1.41", "/containers/json"},
		"/v1.24/_ping":           {"1.24", "/_ping"},
		"/v1.30/images/a/b/json": {"1.30", "/images/a/b/json"},
		"/volumes/v1.2x":         {"1.41", "/volumes/v1.2x"},
	} {
		v, rest, err := splitVersion(in)
		if err != nil || v != want[0] || rest != want[1] {
			t.Errorf("splitVersion(%q) = %q %q %v", in, v, rest, err)
		}
	}
	for _, in := range []string{"/v1.42/info", "/v2.0/info", "/v1.23/info", "/v1.9/info"} {
		if _, _, err := splitVersion(in); !errdefs.IsInvalidArgument(err) {
			t.Errorf("splitVersion(%q) err = %v, want 400", in, err)
		}
	}
	if !versionLess("1.9", "1.24") || versionLess("1.41", "1.41") || !versionLess("1.41", "1.44") {
		t.Error("versionLess compares numerically")
	}
}

func TestSplitRefAndAction(t *testing.T) {
	for in, want := range map[string][2]string{
		"busybox":                          {"busybox", ""},
		"busybox:1.36":                     {"busybox", "1.36"},
		"127.0.0.1:5000/busybox":           {"127.0.0.1:5000/busybox", ""},
		"127.0.0.1:5000/busybox:latest":    {"127.0.0.1:5000/busybox", "latest"},
		"busybox@sha256:abc":               {"busybox", "sha256:abc"},
		"127.0.0.1:5000/a/b@sha256:abc":    {"127.0.0.1:5000/a/b", "sha256:abc"},
		"localhost:5000/x/y:z":             {"localhost:5000/x/y", "z"},
		"registry.example.com:443/team/im": {"registry.example.com:443/team/im", ""},
	} {
		n, tag := splitRef(in)
		if n != want[0] || tag != want[1] {
			t.Errorf("splitRef(%q) = %q %q", in, n, tag)
		}
	}
	if n, a := splitAction("127.0.0.1:5000/busybox:latest/json"); n != "127.0.0.1:5000/busybox:latest" || a != "json" {
		t.Errorf("splitAction: %q %q", n, a)
	}
}

// The backend package is what the daemon imports: it must not pull in
// the HTTP layer or any other berth package; the API itself imports no
// berth package but its backend interfaces (imports only go downward).
func TestImportGraph(t *testing.T) {
	check := func(dir string, bad func(path string) bool) {
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range af.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				if bad(p) {
					t.Errorf("%s imports %s", f, p)
				}
			}
		}
	}
	check("backend", func(p string) bool {
		return p == "net/http" || strings.HasPrefix(p, "github.com/berth-dev/")
	})
	check(".", func(p string) bool {
		return strings.HasPrefix(p, "github.com/berth-dev/") && p != "github.com/berth-dev/berth/internal/api/backend"
	})
}

type stopOpts = backend.StopOptions

// nilContainers satisfies backend.ContainerBackend; tests override methods.
type nilContainers struct{}

var errUnused = errors.New("unused in this test")

func (nilContainers) ContainerCreate(context.Context, backend.ContainerCreateRequest) (container.CreateResponse, error) {
	return container.CreateResponse{}, errUnused
}
func (nilContainers) ContainerStart(context.Context, string) error             { return errUnused }
func (nilContainers) ContainerStop(context.Context, string, stopOpts) error    { return errUnused }
func (nilContainers) ContainerRestart(context.Context, string, stopOpts) error { return errUnused }
func (nilContainers) ContainerKill(context.Context, string, string) error      { return errUnused }
func (nilContainers) ContainerPause(context.Context, string) error             { return errUnused }
func (nilContainers) ContainerUnpause(context.Context, string) error           { return errUnused }
func (nilContainers) ContainerRemove(context.Context, string, backend.RemoveOptions) error {
	return errUnused
}
func (nilContainers) ContainerWait(context.Context, string, container.WaitCondition) (<-chan backend.WaitResult, error) {
	return nil, errUnused
}

func TestParseDetachKeys(t *testing.T) {
	for in, want := range map[string]string{"ctrl-p,ctrl-q": "\x10\x11", "ctrl-a,x": "\x01x", "ctrl-@,ctrl-_": "\x00\x1f", "": ""} {
		got, err := parseDetachKeys(in)
		if err != nil || string(got) != want {
			t.Errorf("parseDetachKeys(%q) = %q, %v", in, got, err)
		}
	}
	for _, bad := range []string{"ctrl-1", "ctrl-", "foo", "ctrl-pq"} {
		if _, err := parseDetachKeys(bad); !errdefs.IsInvalidArgument(err) {
			t.Errorf("parseDetachKeys(%q) err = %v", bad, err)
		}
	}
}
