package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// searchRegistry is an in-process registry on 127.0.0.1 (insecure by
// default, so plain HTTP) that answers the v1 search API:
//
//	GET /v2/                   {}
//	GET /v1/search?q=<t>&n=<n> {"num_results":N,"query":t,"results":[{name,description,star_count,is_official,is_automated}]}
//
// With search off, /v1/search answers 404 as registry:2 does.
type searchRegistry struct {
	addr   string
	mu     sync.Mutex
	last   string // the last search query string
	search bool
}

type searchEntry struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	StarCount   int    `json:"star_count"`
	IsOfficial  bool   `json:"is_official"`
	IsAutomated bool   `json:"is_automated"`
}

var searchEntries = []searchEntry{
	{"busybox", "Busybox base image with a rather long description that surely gets truncated", 3000, true, false},
	{"someone/busybox-plus", "A busybox with\nextras", 12, false, true},
	{"other/busy", "", 0, false, false},
}

func newSearchRegistry(t *testing.T, search bool) *searchRegistry {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &searchRegistry{addr: l.Addr().String(), search: search}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v2/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte("{}"))
	})
	mux.HandleFunc("GET /v1/search", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.last = r.URL.RawQuery
		s.mu.Unlock()
		if !s.search {
			http.NotFound(w, r)
			return
		}
		res := searchEntries
		if n, err := strconv.Atoi(r.URL.Query().Get("n")); err == nil && n > 0 && n < len(res) {
			res = res[:n]
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"num_results": len(res), "query": r.URL.Query().Get("q"), "results": res})
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return s
}

func (s *searchRegistry) lastQuery() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// dockerAt runs the docker CLI against host; stdout and stderr apart.
func dockerAt(t *testing.T, host string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+host, "DOCKER_CONFIG="+t.TempDir())
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), exitCode(err)
}

func TestDockerSearch(t *testing.T) {
	dockerCLI(t)
	d := startDaemon(t)
	reg := newSearchRegistry(t, true)
	plain := newSearchRegistry(t, false)
	term := reg.addr + "/busy"
	peerUp := false
	if c, err := net.DialTimeout("unix", dockerdSock, time.Second); err == nil {
		c.Close()
		peerUp = true
	}

	// Expected outputs are what docker 28 prints against dockerd 20.10.
	cases := []struct {
		args  []string
		want  string
		query string // the query the registry must have seen
	}{
		{[]string{"search", term}, `NAME                   DESCRIPTION                                     STARS     OFFICIAL
busybox                Busybox base image with a rather long descri…   3000      [OK]
someone/busybox-plus   A busybox with extras                           12        
other/busy                                                             0         
`, "q=busy&n=25"},
		{[]string{"search", "--limit", "1", term}, `NAME      DESCRIPTION                                     STARS     OFFICIAL
busybox   Busybox base image with a rather long descri…   3000      [OK]
`, "q=busy&n=1"},
		{[]string{"search", "--filter", "stars=10", term}, `NAME                   DESCRIPTION                                     STARS     OFFICIAL
busybox                Busybox base image with a rather long descri…   3000      [OK]
someone/busybox-plus   A busybox with extras                           12        
`, "q=busy&n=25"},
		{[]string{"search", "--filter", "is-official=true", term}, `NAME      DESCRIPTION                                     STARS     OFFICIAL
busybox   Busybox base image with a rather long descri…   3000      [OK]
`, "q=busy&n=25"},
		{[]string{"search", "--filter", "is-official=false", "--filter", "stars=1", term}, `NAME                   DESCRIPTION             STARS     OFFICIAL
someone/busybox-plus   A busybox with extras   12        
`, "q=busy&n=25"},
		{[]string{"search", "--no-trunc", term}, `NAME                   DESCRIPTION                                                                    STARS     OFFICIAL
busybox                Busybox base image with a rather long description that surely gets truncated   3000      [OK]
someone/busybox-plus   A busybox with extras                                                          12        
other/busy                                                                                            0         
`, "q=busy&n=25"},
		{[]string{"search", "--format", "{{.Name}}|{{.StarCount}}|{{.IsOfficial}}|{{.Description}}", term}, `busybox|3000|[OK]|Busybox base image with a rather long descri…
someone/busybox-plus|12||A busybox with extras
other/busy|0||
`, "q=busy&n=25"},
	}
	for _, c := range cases {
		out, errOut, code := dockerAt(t, "unix://"+d.sock, c.args...)
		if code != 0 || out != c.want {
			t.Errorf("docker %s: exit %d, stderr %q\n got:\n%s\nwant:\n%s", strings.Join(c.args, " "), code, errOut, out, c.want)
		}
		if q := reg.lastQuery(); q != c.query {
			t.Errorf("docker %s: registry saw query %q, want %q", strings.Join(c.args, " "), q, c.query)
		}
		if peerUp {
			pout, perr, pcode := dockerAt(t, "unix://"+dockerdSock, c.args...)
			if pcode != code || pout != out {
				t.Errorf("docker %s differs from dockerd's: berth exit %d\n%s\ndockerd exit %d (stderr %q)\n%s", strings.Join(c.args, " "), code, out, pcode, perr, pout)
			}
		}
	}

	// berth's own CLI prints the same table.
	if out := d.must("berth", "search", term); out != cases[0].want {
		t.Errorf("berth search:\n%s\nwant:\n%s", out, cases[0].want)
	}
	// is-automated is deprecated: both CLIs warn, and the daemon filters
	// on what the registry reported.
	for _, bin := range []string{"docker", d.bin} {
		out, err := d.run(bin, nil, "search", "--filter", "is-automated=true", "--format", "{{.Name}}", term)
		if err != nil || !strings.Contains(out, `WARNING: the "is-automated" filter is deprecated`) || !strings.HasSuffix(out, "\nsomeone/busybox-plus\n") {
			t.Errorf("%s search --filter is-automated=true: %v\n%s", bin, err, out)
		}
	}

	// At API 1.41 the JSON still carries is_automated, as dockerd 20.10's does.
	hc := http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", d.sock)
	}}}
	resp, err := hc.Get("http://berth/v1.41/images/search?term=" + term + "&limit=2")
	if err != nil {
		t.Fatal(err)
	}
	var got []searchEntry
	err = json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if err != nil || len(got) != 2 || !got[1].IsAutomated || got[0].IsAutomated || got[1].Description != "A busybox with\nextras" {
		t.Errorf("GET /images/search: %v %+v", err, got)
	}

	// Errors: a registry without search, bad limits and filters.
	bad := []struct {
		args []string
		want string
	}{
		{[]string{"search", plain.addr + "/busy"}, "Error response from daemon: registry " + plain.addr + " does not support search (GET /v1/search answered 404 Not Found)\n"},
		{[]string{"search", "--limit", "101", term}, "Error response from daemon: limit 101 is outside the range of [1, 100]\n"},
		{[]string{"search", "--filter", "stars=x", term}, "Error response from daemon: invalid filter 'stars=x'\n"},
		{[]string{"search", "--filter", "is-official=maybe", term}, "Error response from daemon: invalid filter 'is-official=maybe'\n"},
		{[]string{"search", "--filter", "color=red", term}, "Error response from daemon: invalid filter 'color'\n"},
	}
	for _, c := range bad {
		out, errOut, code := dockerAt(t, "unix://"+d.sock, c.args...)
		if code != 1 || out != "" || errOut != c.want {
			t.Errorf("docker %s: exit %d stdout %q stderr %q, want exit 1 and %q", strings.Join(c.args, " "), code, out, errOut, c.want)
		}
	}
	if q := plain.lastQuery(); q != "q=busy&n=25" {
		t.Errorf("the registry without search saw %q", q)
	}
}
