package api_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/api/apitest"
	"github.com/berth-dev/berth/internal/api/backend"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"
)

// env is a fake engine served on a unix socket, with a moby client.
type env struct {
	fake *apitest.Fake
	sock string
	cli  *client.Client
}

func newEnv(t *testing.T) *env {
	t.Helper()
	f := apitest.New()
	f.AddImage("busybox:latest")
	f.AddImage("127.0.0.1:5000/busybox:latest")
	sock := apitest.Serve(t, f.Backends())
	cli, err := client.New(client.WithHost("unix://" + sock))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return &env{fake: f, sock: sock, cli: cli}
}

// raw sends one HTTP request over the socket and returns status and body.
func (e *env) raw(t *testing.T, method, path string, body string) (int, http.Header, string) {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", e.sock)
	}}}
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, "http://berth"+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func message(t *testing.T, body string) string {
	t.Helper()
	var m struct {
		Message string `json:"message"`
	}
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("error body %q is not docker's {\"message\"}: %v", body, err)
	}
	return m.Message
}

func (e *env) create(t *testing.T, name string, cfg *container.Config, hc *container.HostConfig) string {
	t.Helper()
	if cfg.Image == "" {
		cfg.Image = "busybox"
	}
	res, err := e.cli.ContainerCreate(context.Background(), client.ContainerCreateOptions{Config: cfg, HostConfig: hc, Name: name})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	return res.ID
}

func TestPingHeadersAndNegotiation(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	p, err := e.cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
	if err != nil {
		t.Fatal(err)
	}
	if p.APIVersion != "1.41" || p.OSType != "linux" {
		t.Fatalf("ping = %+v, want API 1.41 linux", p)
	}
	if v := e.cli.ClientVersion(); v != "1.41" {
		t.Fatalf("client negotiated %s, want 1.41", v)
	}
	for _, method := range []string{"HEAD", "GET"} {
		code, h, body := e.raw(t, method, "/_ping", "")
		if code != 200 {
			t.Fatalf("%s /_ping: %d", method, code)
		}
		for k, want := range map[string]string{"Api-Version": "1.41", "Ostype": "linux", "Docker-Experimental": "false",
			"Cache-Control": "no-cache, no-store, must-revalidate", "Pragma": "no-cache"} {
			if got := h.Get(k); got != want {
				t.Errorf("%s /_ping header %s = %q, want %q", method, k, got, want)
			}
		}
		if method == "GET" && body != "OK" {
			t.Errorf("GET /_ping body %q", body)
		}
		if method == "HEAD" && body != "" {
			t.Errorf("HEAD /_ping has a body %q", body)
		}
	}
}

func TestVersionPrefixes(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{"/version", "/v1.41/version", "/v1.24/version", "/v1.30/version"} {
		code, _, body := e.raw(t, "GET", p, "")
		if code != 200 {
			t.Fatalf("GET %s: %d %s", p, code, body)
		}
		var v struct{ ApiVersion, MinAPIVersion string }
		if err := json.Unmarshal([]byte(body), &v); err != nil || v.ApiVersion != "1.41" || v.MinAPIVersion != "1.24" {
			t.Fatalf("GET %s: %s (%v)", p, body, err)
		}
	}
	code, _, body := e.raw(t, "GET", "/v1.99/version", "")
	if code != 400 || message(t, body) != "client version 1.99 is too new. Maximum supported API version is 1.41" {
		t.Fatalf("too new: %d %s", code, body)
	}
	code, _, body = e.raw(t, "GET", "/v1.12/containers/json", "")
	if code != 400 || !strings.HasPrefix(message(t, body), "client version 1.12 is too old. Minimum supported API version is 1.24") {
		t.Fatalf("too old: %d %s", code, body)
	}
	// A client pinned to a newer version gets the error through the library.
	cli, err := client.New(client.WithHost("unix://"+e.sock), client.WithAPIVersion("1.50"))
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	_, err = cli.ContainerList(context.Background(), client.ContainerListOptions{})
	if err == nil || !strings.Contains(err.Error(), "is too new") || !cerrdefs.IsInvalidArgument(err) {
		t.Fatalf("pinned 1.50 client: err = %v", err)
	}
	code, _, body = e.raw(t, "GET", "/v1.41/nosuchthing", "")
	if code != 404 || message(t, body) != "page not found" {
		t.Fatalf("unknown route: %d %s", code, body)
	}
}

func TestErrorsMapToDockerStatuses(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()

	_, err := e.cli.ContainerInspect(ctx, "nope", client.ContainerInspectOptions{})
	if !cerrdefs.IsNotFound(err) || !strings.Contains(err.Error(), "No such container: nope") {
		t.Fatalf("inspect unknown: %v", err)
	}
	code, _, body := e.raw(t, "DELETE", "/v1.41/containers/nope", "")
	if code != 404 || message(t, body) != "No such container: nope" {
		t.Fatalf("rm unknown: %d %s", code, body)
	}

	code, _, body = e.raw(t, "POST", "/v1.41/containers/create", `{"Image": "busybox",`)
	if code != 400 || !strings.Contains(message(t, body), "invalid JSON") {
		t.Fatalf("malformed JSON: %d %s", code, body)
	}
	code, _, body = e.raw(t, "POST", "/v1.41/containers/create?name=bad%2Fname", `{"Image":"busybox"}`)
	if code != 400 || !strings.Contains(message(t, body), "Invalid container name") {
		t.Fatalf("bad name: %d %s", code, body)
	}
	code, _, body = e.raw(t, "POST", "/v1.41/containers/create", `{"Image":"nosuchimage"}`)
	if code != 404 || message(t, body) != "No such image: nosuchimage:latest" {
		t.Fatalf("missing image: %d %s", code, body)
	}

	id := e.create(t, "web", &container.Config{Cmd: []string{"sleep", "100"}}, nil)
	code, _, body = e.raw(t, "POST", "/v1.41/containers/create?name=web", `{"Image":"busybox"}`)
	if code != 409 || !strings.Contains(message(t, body), `The container name "/web" is already in use`) {
		t.Fatalf("name conflict: %d %s", code, body)
	}
	// stop of a created container: 304, no body.
	code, _, body = e.raw(t, "POST", "/v1.41/containers/web/stop", "")
	if code != 304 || body != "" {
		t.Fatalf("stop stopped: %d %q", code, body)
	}
	if _, err := e.cli.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	code, _, _ = e.raw(t, "POST", "/v1.41/containers/web/start", "")
	if code != 304 {
		t.Fatalf("start started: %d, want 304", code)
	}
	// The client treats 304 as success, as the docker CLI does.
	if _, err := e.cli.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		t.Fatalf("client start of started container: %v", err)
	}
	_, err = e.cli.ContainerRemove(ctx, "web", client.ContainerRemoveOptions{})
	if !cerrdefs.IsConflict(err) || !strings.Contains(err.Error(), "container is running") {
		t.Fatalf("rm running: %v", err)
	}
	code, _, _ = e.raw(t, "POST", "/v1.41/containers/web/pause", "")
	if code != 204 {
		t.Fatalf("pause: %d", code)
	}
	code, _, body = e.raw(t, "POST", "/v1.41/containers/web/pause", "")
	if code != 409 {
		t.Fatalf("pause paused: %d %s", code, body)
	}
	if _, err := e.cli.ContainerRemove(ctx, "web", client.ContainerRemoveOptions{Force: true}); err != nil {
		t.Fatalf("rm -f: %v", err)
	}
	// Routes whose backend is nil answer 501.
	b := e.fake.Backends()
	b.Networks = nil
	e2 := &env{sock: apitest.Serve(t, b)}
	code, _, body = e2.raw(t, "GET", "/v1.41/networks", "")
	if code != 501 || message(t, body) == "" {
		t.Fatalf("nil backend: %d %s", code, body)
	}
}

func TestContainerListFiltersAndBooleans(t *testing.T) {
	e := newEnv(t)
	e.create(t, "aa", &container.Config{Labels: map[string]string{"app": "x"}}, nil)
	e.create(t, "bb", &container.Config{Labels: map[string]string{"app": "y"}}, nil)
	e.create(t, "cc", &container.Config{}, nil)

	names := func(body string) []string {
		var list []container.Summary
		if err := json.Unmarshal([]byte(body), &list); err != nil {
			t.Fatalf("%v: %s", err, body)
		}
		var out []string
		for _, c := range list {
			out = append(out, c.Names[0])
		}
		return out
	}
	for _, tc := range []struct {
		query string
		want  string
	}{
		{"all=1", "/cc /bb /aa"},
		{"all=True", "/cc /bb /aa"},
		{"all=true&limit=1", "/cc"},
		{"all=0", ""},
		{"all=False", ""},
		{"all=1&filters=" + url.QueryEscape(`{"label":{"app=x":true}}`), "/aa"},
		{"all=1&filters=" + url.QueryEscape(`{"label":["app=y"]}`), "/bb"},
		{"all=1&filters=" + url.QueryEscape(`{"label":["app"],"name":["aa"]}`), "/aa"},
	} {
		code, _, body := e.raw(t, "GET", "/v1.41/containers/json?"+tc.query, "")
		if code != 200 {
			t.Fatalf("%s: %d %s", tc.query, code, body)
		}
		if got := strings.Join(names(body), " "); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.query, got, tc.want)
		}
	}
	code, _, body := e.raw(t, "GET", "/v1.41/containers/json?filters=%7Bbad", "")
	if code != 400 || !strings.Contains(message(t, body), "invalid filter") {
		t.Fatalf("bad filters: %d %s", code, body)
	}
	// Through the Go client (map encoding).
	res, err := e.cli.ContainerList(context.Background(), client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", "app=x")})
	if err != nil || len(res.Items) != 1 || res.Items[0].Names[0] != "/aa" {
		t.Fatalf("client list: %+v %v", res.Items, err)
	}
}

func TestRunSequenceMultiplexed(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id := e.create(t, "", &container.Config{Cmd: []string{"sh"}, Entrypoint: []string{"echo", "hello"}, AttachStdout: true, AttachStderr: true},
		&container.HostConfig{AutoRemove: true})
	att, err := e.cli.ContainerAttach(ctx, id, client.ContainerAttachOptions{Stream: true, Stdout: true, Stderr: true})
	if err != nil {
		t.Fatal(err)
	}
	defer att.Close()
	if mt, _ := att.MediaType(); mt != "application/vnd.docker.multiplexed-stream" {
		t.Fatalf("media type %q", mt)
	}
	wait := e.cli.ContainerWait(ctx, id, client.ContainerWaitOptions{Condition: container.WaitConditionRemoved})
	if _, err := e.cli.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &errb, att.Reader); err != nil {
		t.Fatalf("demux: %v", err)
	}
	if out.String() != "hello sh\n" || errb.Len() != 0 {
		t.Fatalf("stdout %q stderr %q", out.String(), errb.String())
	}
	select {
	case res := <-wait.Result:
		if res.StatusCode != 0 || res.Error != nil {
			t.Fatalf("wait: %+v", res)
		}
	case err := <-wait.Error:
		t.Fatalf("wait: %v", err)
	}
	if _, err := e.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{}); !cerrdefs.IsNotFound(err) {
		t.Fatalf("auto-removed container still there: %v", err)
	}
}

func TestWaitHeaderIsFlushedBeforeExit(t *testing.T) {
	e := newEnv(t)
	id := e.create(t, "ww", &container.Config{Cmd: []string{"exit", "3"}}, nil)
	conn, err := net.Dial("unix", e.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "POST /v1.41/containers/"+id+"/wait?condition=next-exit HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	// The status line must arrive while the container has not even started.
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("wait header: %v %v", resp, err)
	}
	if _, err := e.cli.ContainerStart(context.Background(), id, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	var wr container.WaitResponse
	if err := json.NewDecoder(resp.Body).Decode(&wr); err != nil || wr.StatusCode != 3 {
		t.Fatalf("wait body: %+v %v", wr, err)
	}
}

func TestAttachTTYRaw(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id := e.create(t, "", &container.Config{Cmd: []string{"echo", "hi", "there"}, Tty: true, AttachStdout: true}, nil)
	att, err := e.cli.ContainerAttach(ctx, id, client.ContainerAttachOptions{Stream: true, Stdout: true, Stderr: true})
	if err != nil {
		t.Fatal(err)
	}
	defer att.Close()
	if mt, _ := att.MediaType(); mt != "application/vnd.docker.raw-stream" {
		t.Fatalf("media type %q", mt)
	}
	if _, err := e.cli.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(att.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "hi there\r\n" { // raw: no frame headers
		t.Fatalf("tty output %q", b)
	}
}

func TestAttachStdinHalfClose(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id := e.create(t, "", &container.Config{Cmd: []string{"cat"}, OpenStdin: true, StdinOnce: true, AttachStdin: true, AttachStdout: true}, nil)
	att, err := e.cli.ContainerAttach(ctx, id, client.ContainerAttachOptions{Stream: true, Stdin: true, Stdout: true, Stderr: true})
	if err != nil {
		t.Fatal(err)
	}
	defer att.Close()
	wait := e.cli.ContainerWait(ctx, id, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
	if _, err := e.cli.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(att.Conn, "line one\nline two\n"); err != nil {
		t.Fatal(err)
	}
	// Half-close: stdin ends, output must still arrive.
	if err := att.CloseWrite(); err != nil {
		t.Fatalf("CloseWrite: %v", err)
	}
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, io.Discard, att.Reader); err != nil {
		t.Fatal(err)
	}
	if out.String() != "line one\nline two\n" {
		t.Fatalf("cat echoed %q", out.String())
	}
	select {
	case res := <-wait.Result:
		if res.StatusCode != 0 {
			t.Fatalf("exit %d", res.StatusCode)
		}
	case err := <-wait.Error:
		t.Fatal(err)
	}
}

func TestAttachLogsReplayWithoutUpgrade(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id := e.create(t, "", &container.Config{Cmd: []string{"err", "oops"}}, nil)
	wait := e.cli.ContainerWait(ctx, id, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
	if _, err := e.cli.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	<-wait.Result
	// Old-style attach: no Upgrade header → 200 and a hijacked stream.
	conn, err := net.Dial("unix", e.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "POST /v1.24/containers/"+id+"/attach?logs=1&stderr=1&stdout=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
	br := bufio.NewReader(conn)
	status, _ := br.ReadString('\n')
	if !strings.HasPrefix(status, "HTTP/1.1 200 OK") {
		t.Fatalf("status line %q", status)
	}
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if l == "\r\n" {
			break
		}
	}
	var stdout, stderr bytes.Buffer
	if _, err := stdcopy.StdCopy(&stdout, &stderr, br); err != nil {
		t.Fatal(err)
	}
	if stderr.String() != "oops\n" || stdout.Len() != 0 {
		t.Fatalf("replay: stdout %q stderr %q", stdout.String(), stderr.String())
	}
}

func TestLogsFramesAndTimestamps(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id := e.create(t, "ll", &container.Config{Cmd: []string{"echo", "logged"}}, nil)
	wait := e.cli.ContainerWait(ctx, id, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
	if _, err := e.cli.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	<-wait.Result
	rc, err := e.cli.ContainerLogs(ctx, "ll", client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Timestamps: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, io.Discard, rc); err != nil {
		t.Fatal(err)
	}
	ts, line, _ := strings.Cut(out.String(), " ")
	if _, err := time.Parse(time.RFC3339Nano, ts); err != nil || line != "logged\n" {
		t.Fatalf("log line %q (%v)", out.String(), err)
	}
	code, _, body := e.raw(t, "GET", "/v1.41/containers/ll/logs", "")
	if code != 400 || !strings.Contains(message(t, body), "you must choose at least one stream") {
		t.Fatalf("logs without streams: %d %s", code, body)
	}
}

func TestEventsStreamAndFilters(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ev := e.cli.Events(ctx, client.EventsListOptions{Filters: make(client.Filters).Add("event", "create").Add("container", "evt2")})
	// Events returns once the response header arrived, and the server
	// subscribes before it sends the header: nothing below can be missed.
	e.create(t, "evt1", &container.Config{}, nil)
	e.create(t, "evt2", &container.Config{}, nil)
	select {
	case m := <-ev.Messages:
		if m.Action != events.ActionCreate || m.Actor.Attributes["name"] != "evt2" {
			t.Fatalf("first event %+v, want create of evt2 (evt1 filtered out)", m)
		}
	case err := <-ev.Err:
		t.Fatal(err)
	case <-time.After(10 * time.Second):
		t.Fatal("no event")
	}
	// since/until replay; legacy fields for 1.41 clients; the legacy
	// filter encoding.
	now := time.Now().Unix()
	q := url.Values{"since": {"0"}, "until": {strconv.FormatInt(now+1, 10)}, "filters": {`{"type":["container"],"event":["create"]}`}}
	code, _, body := e.raw(t, "GET", "/v1.41/events?"+q.Encode(), "")
	if code != 200 {
		t.Fatalf("events replay: %d %s", code, body)
	}
	lines := strings.Split(strings.TrimSpace(body), "\n")
	if len(lines) != 2 {
		t.Fatalf("replayed %d events, want 2: %s", len(lines), body)
	}
	// until already past when the request arrives: the replay still comes.
	q.Set("until", strconv.FormatFloat(float64(time.Now().UnixNano())/1e9, 'f', 9, 64))
	code, _, body = e.raw(t, "GET", "/v1.41/events?"+q.Encode(), "")
	if n := len(strings.Split(strings.TrimSpace(body), "\n")); code != 200 || n != 2 {
		t.Fatalf("replay with a past until: %d, %d events: %s", code, n, body)
	}
	var legacy struct{ Status, ID, From, Action string }
	if err := json.Unmarshal([]byte(lines[0]), &legacy); err != nil || legacy.Status != "create" || legacy.ID == "" || legacy.From != "busybox" {
		t.Fatalf("legacy event fields: %+v %v (%s)", legacy, err, lines[0])
	}
}

func TestImagesWithSlashesAndPullProgress(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	img, err := e.cli.ImageInspect(ctx, "127.0.0.1:5000/busybox:latest")
	if err != nil || img.RepoTags[0] != "127.0.0.1:5000/busybox:latest" {
		t.Fatalf("inspect slash name: %+v %v", img, err)
	}
	code, _, body := e.raw(t, "GET", "/v1.41/images/127.0.0.1:5000/busybox:latest/json", "")
	if code != 200 || !strings.Contains(body, `"VirtualSize"`) {
		t.Fatalf("unescaped slash name: %d %s", code, body)
	}
	code, _, body = e.raw(t, "GET", "/v1.41/images/127.0.0.1:5000%2Fbusybox:latest/json", "")
	if code != 200 || !strings.Contains(body, `"127.0.0.1:5000/busybox:latest"`) {
		t.Fatalf("escaped slash name: %d %s", code, body)
	}
	code, _, _ = e.raw(t, "GET", "/v1.41/images/127.0.0.1:5000/busybox:latest/history", "")
	if code != 200 {
		t.Fatalf("history: %d", code)
	}
	if _, err := e.cli.ImageTag(ctx, client.ImageTagOptions{Source: "busybox", Target: "127.0.0.1:5000/mine/bb:v1"}); err != nil {
		t.Fatal(err)
	}
	list, err := e.cli.ImageList(ctx, client.ImageListOptions{Filters: make(client.Filters).Add("reference", "127.0.0.1:5000/mine/*")})
	if err != nil || len(list.Items) != 1 {
		t.Fatalf("list by reference: %+v %v", list.Items, err)
	}
	del, err := e.cli.ImageRemove(ctx, "127.0.0.1:5000/mine/bb:v1", client.ImageRemoveOptions{})
	if err != nil || len(del.Items) != 1 || del.Items[0].Untagged != "127.0.0.1:5000/mine/bb:v1" {
		t.Fatalf("rmi slash name: %+v %v", del, err)
	}

	// Pull: progress lines, then success.
	e.fake.AddRemote("127.0.0.1:5000/alpine:3")
	resp, err := e.cli.ImagePull(ctx, "127.0.0.1:5000/alpine:3", client.ImagePullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var statuses []string
	for m, err := range resp.JSONMessages(ctx) {
		if err != nil {
			t.Fatalf("pull stream: %v", err)
		}
		statuses = append(statuses, m.Status)
	}
	if len(statuses) != 4 || statuses[0] != "Pulling from 127.0.0.1:5000/alpine" {
		t.Fatalf("pull statuses %q", statuses)
	}
	if _, err := e.cli.ImageInspect(ctx, "127.0.0.1:5000/alpine:3"); err != nil {
		t.Fatalf("pulled image: %v", err)
	}
	// A missing image fails before any progress: a plain HTTP 404.
	_, err = e.cli.ImagePull(ctx, "nothere", client.ImagePullOptions{})
	if !cerrdefs.IsNotFound(err) || !strings.Contains(err.Error(), "pull access denied for") {
		t.Fatalf("pull missing: %v", err)
	}
	// A failure after progress started arrives in-stream.
	e.fake.AddRemote("failing")
	code, _, body = e.raw(t, "POST", "/v1.41/images/create?fromImage=failing&tag=latest", "")
	if code != 200 {
		t.Fatalf("pull failing: %d", code)
	}
	lines := strings.Split(strings.TrimSpace(body), "\n")
	var last struct {
		ErrorDetail struct{ Message string } `json:"errorDetail"`
		Error       string                   `json:"error"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil ||
		last.ErrorDetail.Message != "failed to register layer: unexpected EOF" || last.Error != last.ErrorDetail.Message {
		t.Fatalf("in-stream error: %s (%v)", lines[len(lines)-1], err)
	}
	resp, err = e.cli.ImagePull(ctx, "failing", client.ImagePullOptions{})
	if err == nil {
		err = resp.Wait(ctx)
	}
	if err == nil || !strings.Contains(err.Error(), "unexpected EOF") {
		t.Fatalf("client sees mid-stream pull error: %v", err)
	}
}

func TestRegistryAuthHeader(t *testing.T) {
	e := newEnv(t)
	code, _, body := e.raw(t, "POST", "/v1.41/auth", `{"username":"u","password":"wrong","serveraddress":"r"}`)
	if code != 401 || !strings.Contains(message(t, body), "401 Unauthorized") {
		t.Fatalf("bad login: %d %s", code, body)
	}
	code, _, body = e.raw(t, "POST", "/v1.41/auth", `{"username":"u","password":"secret"}`)
	if code != 200 || !strings.Contains(body, "Login Succeeded") {
		t.Fatalf("login: %d %s", code, body)
	}
	// A corrupt X-Registry-Auth header is a 400.
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return net.Dial("unix", e.sock)
	}}}
	req, _ := http.NewRequest("POST", "http://x/v1.41/images/create?fromImage=busybox&tag=latest", nil)
	req.Header.Set("X-Registry-Auth", "!!!notbase64")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("corrupt auth header: %d", resp.StatusCode)
	}
}

func TestInspectLegacyNetworkFieldsAndDF(t *testing.T) {
	e := newEnv(t)
	e.create(t, "nn", &container.Config{}, nil)
	code, _, body := e.raw(t, "GET", "/v1.41/containers/nn/json", "")
	if code != 200 {
		t.Fatal(code, body)
	}
	var v struct {
		NetworkSettings map[string]json.RawMessage
		HostConfig      struct {
			NetworkMode   string
			RestartPolicy struct{ Name string }
		}
	}
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"IPAddress", "Gateway", "MacAddress", "Bridge", "Networks"} {
		if _, ok := v.NetworkSettings[k]; !ok {
			t.Errorf("NetworkSettings.%s missing for a 1.41 client", k)
		}
	}
	code, _, body = e.raw(t, "GET", "/v1.41/system/df", "")
	var df struct {
		LayersSize int64
		Images     []json.RawMessage
		Containers []json.RawMessage
		Volumes    []json.RawMessage
	}
	if code != 200 || json.Unmarshal([]byte(body), &df) != nil || len(df.Images) != 2 || len(df.Containers) != 1 || df.Volumes == nil {
		t.Fatalf("df: %d %s", code, body)
	}
}

func TestCreateNormalization(t *testing.T) {
	rec := &recordingCreate{Fake: apitest.New()}
	rec.AddImage("busybox")
	b := rec.Backends()
	b.Containers = rec
	sock := apitest.Serve(t, b)
	e := &env{sock: sock}
	// 1.40 client: cgroupns defaults to host; legacy container-wide MAC
	// moves to the endpoint; restart policy and network mode get defaults.
	code, _, body := e.raw(t, "POST", "/v1.40/containers/create", `{"Image":"busybox","MacAddress":"02:42:ac:11:00:02","HostConfig":{"PidsLimit":-1}}`)
	if code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	got := rec.get()
	if got.HostConfig.CgroupnsMode != "host" || got.HostConfig.RestartPolicy.Name != "no" || got.HostConfig.NetworkMode != "default" || got.HostConfig.PidsLimit != nil {
		t.Fatalf("normalized host config: %+v", got.HostConfig)
	}
	if ep := got.NetworkingConfig.EndpointsConfig["bridge"]; ep == nil || ep.MacAddress.String() != "02:42:ac:11:00:02" {
		t.Fatalf("MAC not moved to the endpoint: %+v", got.NetworkingConfig)
	}
	code, _, _ = e.raw(t, "POST", "/v1.41/containers/create", `{"Image":"busybox"}`)
	if code != 201 || rec.get().HostConfig.CgroupnsMode != "" {
		t.Fatalf("1.41 keeps cgroupns empty (daemon default): %d %q", code, rec.get().HostConfig.CgroupnsMode)
	}
	if !strings.Contains(body, `"Warnings":[]`) {
		t.Fatalf("warnings should be [], got %s", body)
	}
}

type recordingCreate struct {
	*apitest.Fake
	mu   sync.Mutex
	last backend.ContainerCreateRequest
}

func (r *recordingCreate) ContainerCreate(ctx context.Context, req backend.ContainerCreateRequest) (container.CreateResponse, error) {
	r.mu.Lock()
	r.last = req
	r.mu.Unlock()
	return r.Fake.ContainerCreate(ctx, req)
}

func (r *recordingCreate) get() backend.ContainerCreateRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

func TestShutdownClosesHijackedConnections(t *testing.T) {
	f := apitest.New()
	f.AddImage("busybox")
	dir := t.TempDir()
	l, err := api.Listen("unix://"+dir+"/s.sock", api.TLSOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- api.Serve(ctx, []net.Listener{l}, api.New(f.Backends(), api.Options{})) }()
	cli, err := client.New(client.WithHost("unix://" + dir + "/s.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	res, err := cli.ContainerCreate(context.Background(), client.ContainerCreateOptions{Config: &container.Config{Image: "busybox", Cmd: []string{"sleep"}}})
	if err != nil {
		t.Fatal(err)
	}
	att, err := cli.ContainerAttach(context.Background(), res.ID, client.ContainerAttachOptions{Stream: true, Stdout: true})
	if err != nil {
		t.Fatal(err)
	}
	defer att.Close()
	ev := cli.Events(context.Background(), client.EventsListOptions{})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	// The attached stream must end (EOF or reset), not hang.
	_ = att.Conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = io.ReadAll(att.Reader)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("hijacked connection still open after shutdown")
	}
	// The events stream ended too (Serve returned, so its handler did).
	select {
	case err := <-ev.Err:
		if err == nil {
			t.Fatal("events stream ended without an error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("events stream still open after shutdown")
	}
}

func TestStatsChangesExportStatPath(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	id := e.create(t, "st", &container.Config{Cmd: []string{"sleep"}}, nil)
	if _, err := e.cli.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	// Streaming: several JSON documents on one response.
	res, err := e.cli.ContainerStats(ctx, id, client.ContainerStatsOptions{Stream: true})
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(res.Body)
	for i := 0; i < 2; i++ {
		var st container.StatsResponse
		if err := dec.Decode(&st); err != nil || st.Name != "/st" || st.MemoryStats.Limit != 1<<30 {
			t.Fatalf("stats sample %d: %+v %v", i, st, err)
		}
	}
	res.Body.Close()
	// One sample, then the body ends.
	code, _, body := e.raw(t, "GET", "/v1.41/containers/st/stats?stream=0", "")
	if code != 200 || strings.Count(strings.TrimSpace(body), "\n") != 0 {
		t.Fatalf("stats stream=0: %d %q", code, body)
	}
	code, _, _ = e.raw(t, "GET", "/v1.41/containers/st/stats?stream=1&one-shot=1", "")
	if code != 400 {
		t.Fatalf("stream with one-shot: %d", code)
	}

	diff, err := e.cli.ContainerDiff(ctx, id, client.ContainerDiffOptions{})
	if err != nil || len(diff.Changes) != 1 || diff.Changes[0].Path != "/tmp/x" {
		t.Fatalf("diff: %+v %v", diff, err)
	}
	exp, err := e.cli.ContainerExport(ctx, id, client.ContainerExportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(exp)
	exp.Close()
	if !bytes.Contains(b, []byte("etc/hostname")) {
		t.Fatalf("export is not the tar: %q", b)
	}
	sp, err := e.cli.ContainerStatPath(ctx, id, client.ContainerStatPathOptions{Path: "/etc/hostname"})
	if err != nil || sp.Stat.Name != "hostname" || sp.Stat.Mode != 0o644 {
		t.Fatalf("stat path (X-Docker-Container-Path-Stat): %+v %v", sp, err)
	}
	_, err = e.cli.ContainerStatPath(ctx, id, client.ContainerStatPathOptions{Path: "/missing"})
	if !cerrdefs.IsNotFound(err) {
		t.Fatalf("stat of a missing path: %v", err)
	}
}

func TestLogsFollow(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id := e.create(t, "fl", &container.Config{Cmd: []string{"cat"}, OpenStdin: true, AttachStdin: true}, nil)
	att, err := e.cli.ContainerAttach(ctx, id, client.ContainerAttachOptions{Stream: true, Stdin: true})
	if err != nil {
		t.Fatal(err)
	}
	defer att.Close()
	if _, err := e.cli.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	io.WriteString(att.Conn, "first\n")
	rc, err := e.cli.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	pr, pw := io.Pipe()
	go func() { _, err := stdcopy.StdCopy(pw, io.Discard, rc); pw.CloseWithError(err) }()
	br := bufio.NewReader(pr)
	if l, err := br.ReadString('\n'); err != nil || l != "first\n" {
		t.Fatalf("followed line 1: %q %v", l, err)
	}
	// A line written after the logs request arrives on the same stream.
	io.WriteString(att.Conn, "second\n")
	if l, err := br.ReadString('\n'); err != nil || l != "second\n" {
		t.Fatalf("followed line 2: %q %v", l, err)
	}
	// The container exits (stdin closed): the follow ends.
	att.CloseWrite()
	if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
		t.Fatalf("after exit: %q %v", rest, err)
	}
}
