package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
)

// daemon is an httptest server on a unix socket recording requests.
type daemon struct {
	mu       sync.Mutex
	requests []*http.Request
	bodies   []string
}

func (d *daemon) record(r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.requests = append(d.requests, r)
	d.bodies = append(d.bodies, string(b))
}

func (d *daemon) last(t *testing.T) (*http.Request, string) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.requests) == 0 {
		t.Fatal("no request reached the daemon")
	}
	return d.requests[len(d.requests)-1], d.bodies[len(d.bodies)-1]
}

// newDaemon serves h (after recording) on a unix socket; _ping answers apiVersion.
func newDaemon(t *testing.T, apiVersion string, h http.HandlerFunc, opts ...Opt) (*Client, *daemon) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "d.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	d := &daemon{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/_ping" {
			w.Header().Set("Api-Version", apiVersion)
			_, _ = io.WriteString(w, "OK")
			return
		}
		d.record(r)
		h(w, r)
	}))
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	c, err := New(append([]Opt{WithHost("unix://" + sock), WithUserAgent("berth-cli/test")}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, d
}

func TestVersionNegotiationAndHeaders(t *testing.T) {
	c, d := newDaemon(t, "1.41", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `[{"Id":"abc"}]`)
	})
	if got := c.ClientVersion(); got != MaxAPIVersion {
		t.Fatalf("before negotiation: version %q, want %q", got, MaxAPIVersion)
	}
	res, err := c.ContainerList(context.Background(), ContainerListOptions{All: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Items) != 1 || res.Items[0].ID != "abc" {
		t.Fatalf("items %+v", res.Items)
	}
	r, _ := d.last(t)
	if r.URL.Path != "/v1.41/containers/json" || r.URL.RawQuery != "all=1" {
		t.Errorf("request %s?%s, want /v1.41/containers/json?all=1", r.URL.Path, r.URL.RawQuery)
	}
	if ua := r.Header.Get("User-Agent"); ua != "berth-cli/test" {
		t.Errorf("User-Agent %q", ua)
	}
	if r.Host != "api.moby.localhost" {
		t.Errorf("Host %q", r.Host)
	}
	if c.ClientVersion() != "1.41" {
		t.Errorf("negotiated %q, want 1.41", c.ClientVersion())
	}
}

func TestPinnedVersionSkipsPing(t *testing.T) {
	c, d := newDaemon(t, "1.41", func(w http.ResponseWriter, r *http.Request) {}, WithAPIVersion("v1.45"))
	if _, err := c.ContainerStart(context.Background(), "x", ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	r, _ := d.last(t)
	if r.URL.Path != "/v1.45/containers/x/start" {
		t.Errorf("path %s", r.URL.Path)
	}
	if len(d.requests) != 1 {
		t.Errorf("%d requests, want 1 (no _ping is recorded anyway)", len(d.requests))
	}
}

func TestErrorDecoding(t *testing.T) {
	for _, tc := range []struct {
		name        string
		status      int
		ctype, body string
		want        string
		class       error
	}{
		{"json", 404, "application/json", `{"message":"No such container: x\n"}`, "Error response from daemon: No such container: x", cerrdefs.ErrNotFound},
		{"text", 409, "text/plain", "conflict here\n", "Error response from daemon: conflict here", cerrdefs.ErrConflict},
		{"json without message", 500, "application/json", `{}`, "Error response from daemon: API returned a 500 (Internal Server Error) but provided no error-message", cerrdefs.ErrInternal},
		{"empty", 400, "", "", "request returned 400 Bad Request for API route and version", cerrdefs.ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := newDaemon(t, "1.41", func(w http.ResponseWriter, r *http.Request) {
				if tc.ctype != "" {
					w.Header().Set("Content-Type", tc.ctype)
				}
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			})
			_, err := c.ContainerInspect(context.Background(), "x", ContainerInspectOptions{})
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("error %v, want prefix %q", err, tc.want)
			}
			if !errors.Is(err, tc.class) {
				t.Errorf("error %v is not %v", err, tc.class)
			}
			if IsErrConnectionFailed(err) {
				t.Errorf("daemon error classified as connection failure")
			}
		})
	}
}

func TestConnectionFailed(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	c, err := New(WithHost("unix://" + sock))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ContainerList(context.Background(), ContainerListOptions{})
	if !IsErrConnectionFailed(err) {
		t.Fatalf("missing socket: %v is not a connection failure", err)
	}
	// A socket file nobody listens on: connection refused.
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	_, err = c.ContainerList(context.Background(), ContainerListOptions{})
	if !IsErrConnectionFailed(err) || !strings.Contains(err.Error(), "Cannot connect to the Docker daemon at unix://"+sock) {
		t.Fatalf("refused: %v", err)
	}
	if _, err := New(WithHost("nonsense")); err == nil || err.Error() != "unable to parse docker host `nonsense`" {
		t.Fatalf("bad host: %v", err)
	}
}

func TestFiltersEncoding(t *testing.T) {
	c, d := newDaemon(t, "1.41", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"Volumes":[],"Warnings":null}`)
	})
	f := Filters{}.Add("label", "a=b", "c").Add("dangling", "true")
	if _, err := c.VolumeList(context.Background(), VolumeListOptions{Filters: f}); err != nil {
		t.Fatal(err)
	}
	r, _ := d.last(t)
	var got map[string]map[string]bool
	if err := json.Unmarshal([]byte(r.URL.Query().Get("filters")), &got); err != nil {
		t.Fatalf("filters %q: %v", r.URL.Query().Get("filters"), err)
	}
	if len(got) != 2 || !got["label"]["a=b"] || !got["label"]["c"] || !got["dangling"]["true"] {
		t.Errorf("filters %v", got)
	}
	// No filters: no parameter at all.
	if _, err := c.VolumeList(context.Background(), VolumeListOptions{}); err != nil {
		t.Fatal(err)
	}
	if r, _ := d.last(t); r.URL.RawQuery != "" {
		t.Errorf("query %q without filters", r.URL.RawQuery)
	}
}

func TestAuthHeaderAndReference(t *testing.T) {
	c, d := newDaemon(t, "1.41", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"status":"ok"}`)
	})
	rc, err := c.ImagePull(context.Background(), "busybox", ImagePullOptions{RegistryAuth: "e30="})
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.ReadAll(rc)
	rc.Close()
	r, _ := d.last(t)
	if r.URL.Path != "/v1.41/images/create" || r.URL.Query().Get("fromImage") != "docker.io/library/busybox" || r.URL.Query().Get("tag") != "latest" {
		t.Errorf("pull request %s?%s", r.URL.Path, r.URL.RawQuery)
	}
	if r.Header.Get("X-Registry-Auth") != "e30=" {
		t.Errorf("X-Registry-Auth %q", r.Header.Get("X-Registry-Auth"))
	}
	rc, err = c.ImagePush(context.Background(), "127.0.0.1:5000/a/b:v1", ImagePushOptions{RegistryAuth: "e30="})
	if err != nil {
		t.Fatal(err)
	}
	rc.Close()
	r, _ = d.last(t)
	if r.URL.Path != "/v1.41/images/127.0.0.1:5000/a/b/push" || r.URL.RawQuery != "tag=v1" {
		t.Errorf("push request %s?%s", r.URL.Path, r.URL.RawQuery)
	}
	if _, err := c.ImagePush(context.Background(), "Busybox", ImagePushOptions{}); err == nil ||
		err.Error() != "invalid reference format: repository name (library/Busybox) must be lowercase" {
		t.Errorf("uppercase push: %v", err)
	}
}

func TestCreateSendsJSON(t *testing.T) {
	c, d := newDaemon(t, "1.41", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"Id":"c1","Warnings":["w"]}`)
	})
	res, err := c.ContainerCreate(context.Background(), ContainerCreateOptions{
		Config:     &container.Config{Image: "busybox"},
		HostConfig: &container.HostConfig{CapAdd: []string{"net_admin", "CAP_NET_ADMIN", "chown"}},
		Name:       "n",
	})
	if err != nil || res.ID != "c1" || len(res.Warnings) != 1 {
		t.Fatalf("create: %+v %v", res, err)
	}
	r, body := d.last(t)
	if r.Header.Get("Content-Type") != "application/json" || r.URL.RawQuery != "name=n" {
		t.Errorf("Content-Type %q, query %q", r.Header.Get("Content-Type"), r.URL.RawQuery)
	}
	var req container.CreateRequest
	if err := json.Unmarshal([]byte(body), &req); err != nil {
		t.Fatal(err)
	}
	if strings.Join(req.HostConfig.CapAdd, ",") != "CAP_CHOWN,CAP_NET_ADMIN" {
		t.Errorf("CapAdd %v", req.HostConfig.CapAdd)
	}
}

// TestHijack runs attach against a raw server speaking the upgrade
// protocol: output sent along with the 101 must not be lost, and
// CloseWrite must reach the server as EOF while output still flows back.
func TestHijack(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "h.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	type seen struct {
		req   *http.Request
		stdin string
	}
	got := make(chan seen, 1)
	go func() {
		conn, err := l.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		br := bufio.NewReader(conn)
		if _, err := http.ReadRequest(br); err != nil { // _ping HEAD
			return
		}
		_, _ = io.WriteString(conn, "HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Length: 0\r\n\r\n")
		conn2, err := l.Accept()
		if err != nil {
			return
		}
		defer conn2.Close()
		br2 := bufio.NewReader(conn2)
		req, err := http.ReadRequest(br2)
		if err != nil {
			return
		}
		// The 101 and the first output in one write.
		_, _ = io.WriteString(conn2, "HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\nhello ")
		stdin, _ := io.ReadAll(br2) // until the client's CloseWrite
		_, _ = io.WriteString(conn2, "got "+string(stdin))
		got <- seen{req, string(stdin)}
	}()
	c, err := New(WithHost("unix://"+sock), WithUserAgent("berth-cli/test"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.ContainerAttach(context.Background(), "ctr", ContainerAttachOptions{Stream: true, Stdin: true, Stdout: true, DetachKeys: "ctrl-x"})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	if mt, ok := res.MediaType(); !ok || mt != "application/vnd.docker.raw-stream" {
		t.Errorf("media type %q %v", mt, ok)
	}
	if _, err := io.WriteString(res.Conn, "input"); err != nil {
		t.Fatal(err)
	}
	if err := res.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(res.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != "hello got input" {
		t.Errorf("output %q, want %q", out, "hello got input")
	}
	s := <-got
	if s.req.Method != http.MethodPost || s.req.URL.Path != "/v1.41/containers/ctr/attach" ||
		s.req.URL.RawQuery != "detachKeys=ctrl-x&stdin=1&stdout=1&stream=1" {
		t.Errorf("request %s %s?%s", s.req.Method, s.req.URL.Path, s.req.URL.RawQuery)
	}
	if s.req.Header.Get("Upgrade") != "tcp" || s.req.Header.Get("Connection") != "Upgrade" || s.req.Header.Get("Content-Type") != "text/plain" {
		t.Errorf("headers %v", s.req.Header)
	}
}

func TestHijackRefused(t *testing.T) {
	c, _ := newDaemon(t, "1.41", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
	})
	_, err := c.ExecAttach(context.Background(), "e1", ExecAttachOptions{})
	if err == nil || err.Error() != "unable to upgrade to tcp, received 404" {
		t.Fatalf("error %v", err)
	}
}

func TestWaitAndStream(t *testing.T) {
	c, d := newDaemon(t, "1.41", func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/wait"):
			_, _ = io.WriteString(w, `{"StatusCode":3}`)
		case strings.HasSuffix(r.URL.Path, "/load"):
			_, _ = io.WriteString(w, `{"stream":"Loaded"}`)
		}
	})
	w := c.ContainerWait(context.Background(), "x", ContainerWaitOptions{Condition: container.WaitConditionNextExit})
	select {
	case res := <-w.Result:
		if res.StatusCode != 3 {
			t.Errorf("status %d", res.StatusCode)
		}
	case err := <-w.Error:
		t.Fatal(err)
	}
	rc, err := c.ImageLoad(context.Background(), strings.NewReader("tar bytes"), ImageLoadWithQuiet(true))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	r, body := d.last(t)
	if string(b) != `{"stream":"Loaded"}` || body != "tar bytes" || r.URL.RawQuery != "quiet=1" || r.Header.Get("Content-Type") != "application/x-tar" {
		t.Errorf("load: out %q body %q query %q type %q", b, body, r.URL.RawQuery, r.Header.Get("Content-Type"))
	}
}

func TestTLSConfigErrors(t *testing.T) {
	_, err := New(WithHost("tcp://127.0.0.1:1"), WithTLSClientConfig(filepath.Join(t.TempDir(), "missing-ca.pem"), "", ""))
	if err == nil || !strings.HasPrefix(err.Error(), "configure TLS: ") {
		t.Fatalf("missing CA: %v", err)
	}
}

// ListContainers decodes into a subset type, with and without a
// Content-Length (one buffer, or the streaming decoder), and a body cut
// short of its Content-Length is an error.
func TestListContainersSubsetAndBodies(t *testing.T) {
	const body = `[{"Id":"abc","Names":["/x"],"NetworkSettings":{"Networks":{"bridge":{"IPAddress":"10.0.0.2"}}},"Mounts":[{"Name":"v","Driver":"local"}]}]`
	type slim struct {
		ID              string `json:"Id"`
		NetworkSettings *struct{ Networks map[string]struct{} }
	}
	for _, mode := range []string{"length", "chunked", "short"} {
		c, _ := newDaemon(t, "1.41", func(w http.ResponseWriter, r *http.Request) {
			switch mode {
			case "length":
				w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			case "short":
				w.Header().Set("Content-Length", strconv.Itoa(len(body)+10))
			}
			_, _ = io.WriteString(w, body)
			if mode == "chunked" {
				w.(http.Flusher).Flush()
			}
		})
		items, err := ListContainers[slim](context.Background(), c, ContainerListOptions{})
		if mode == "short" {
			if err == nil {
				t.Fatalf("%s: a truncated body decoded: %+v", mode, items)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		if len(items) != 1 || items[0].ID != "abc" || items[0].NetworkSettings == nil || len(items[0].NetworkSettings.Networks) != 1 {
			t.Fatalf("%s: items %+v", mode, items)
		}
		if _, ok := items[0].NetworkSettings.Networks["bridge"]; !ok {
			t.Fatalf("%s: networks %+v", mode, items[0].NetworkSettings.Networks)
		}
	}
}
