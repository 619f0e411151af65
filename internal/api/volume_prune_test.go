package api

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/api/backend"
	"github.com/moby/moby/api/types/volume"
)

// pruneBackend records the filters volume prune reaches the daemon with.
type pruneBackend struct {
	backend.VolumeBackend
	got backend.Filters
}

func (p *pruneBackend) VolumePrune(_ context.Context, f backend.Filters) (volume.PruneReport, error) {
	p.got = f
	return volume.PruneReport{}, nil
}

// Before API 1.42 prune removed named volumes too: dockerd adds all=true
// for those clients, and so does berth; from 1.42 the client decides.
func TestVolumePruneAllByVersion(t *testing.T) {
	for _, tc := range []struct {
		version, filters, want string
	}{
		{"1.24", ``, "true"},
		{"1.41", ``, "true"},
		{"1.41", `{"label":{"a=b":true}}`, "true"},
		{"1.42", ``, ""},
		{"1.43", `{"all":{"true":true}}`, "true"},
		{"1.44", `{"all":{"false":true}}`, "false"},
	} {
		f, err := parseFilters(tc.filters)
		if err != nil {
			t.Fatal(err)
		}
		normalizeVolumePrune(tc.version, f)
		if got := strings.Join(f.Get("all"), ","); got != tc.want {
			t.Errorf("%s %s: all=%q, want %q", tc.version, tc.filters, got, tc.want)
		}
	}

	// Through the route: berth speaks 1.41, with or without the prefix.
	for _, path := range []string{"/v1.41/volumes/prune", "/volumes/prune", "/v1.30/volumes/prune?filters=%7B%22label%22%3A%5B%22x%22%5D%7D"} {
		b := &pruneBackend{}
		s := New(Backends{Volumes: b}, Options{})
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest("POST", path, nil))
		if rec.Code != 200 || strings.Join(b.got.Get("all"), ",") != "true" {
			t.Errorf("POST %s: %d %s, filters %v", path, rec.Code, rec.Body, b.got)
		}
	}
}
