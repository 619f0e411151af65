package cli

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSimpleCommands checks, command by command, the API call made (method,
// path, query) and what is printed.
func TestSimpleCommands(t *testing.T) {
	type reply struct {
		status int
		body   any
	}
	cases := []struct {
		args     []string
		pattern  string // handler pattern
		reply    reply
		call     string // recorded call to expect
		query    string
		out      string
		code     int
		bodyPart string // substring of the request body
	}{
		{[]string{"tag", "busybox", "me/box:1"}, "POST /images/{name}/tag", reply{201, nil}, "POST /images/busybox/tag", "repo=docker.io%2Fme%2Fbox&tag=1", "", 0, ""},
		{[]string{"kill", "-s", "HUP", "web"}, "POST /containers/{id}/kill", reply{204, nil}, "POST /containers/web/kill", "signal=HUP", "web\n", 0, ""},
		{[]string{"restart", "-t", "0", "-s", "SIGINT", "web"}, "POST /containers/{id}/restart", reply{204, nil}, "POST /containers/web/restart", "signal=SIGINT&t=0", "web\n", 0, ""},
		{[]string{"pause", "a", "b"}, "POST /containers/{id}/pause", reply{204, nil}, "POST /containers/b/pause", "", "a\nb\n", 0, ""},
		{[]string{"unpause", "a"}, "POST /containers/{id}/unpause", reply{204, nil}, "POST /containers/a/unpause", "", "a\n", 0, ""},
		{[]string{"rename", "old", "new"}, "POST /containers/{id}/rename", reply{204, nil}, "POST /containers/old/rename", "name=new", "", 0, ""},
		{[]string{"wait", "web"}, "POST /containers/{id}/wait", reply{200, map[string]any{"StatusCode": 137}}, "POST /containers/web/wait", "", "137\n", 0, ""},
		{[]string{"start", "web", "gone"}, "POST /containers/{id}/start", reply{404, map[string]string{"message": "No such container: gone"}}, "POST /containers/gone/start", "",
			"", 1, ""},
		{[]string{"top", "web", "-o", "pid"}, "GET /containers/{id}/top", reply{200, map[string]any{"Titles": []string{"PID", "CMD"}, "Processes": [][]string{{"1", "sleep 100"}}}},
			"GET /containers/web/top", "ps_args=-o+pid", "PID                 CMD\n1                   sleep 100\n", 0, ""},
		{[]string{"diff", "web"}, "GET /containers/{id}/changes", reply{200, []map[string]any{{"Path": "/tmp", "Kind": 0}, {"Path": "/tmp/x", "Kind": 1}, {"Path": "/etc/y", "Kind": 2}}},
			"GET /containers/web/changes", "", "C /tmp\nA /tmp/x\nD /etc/y\n", 0, ""},
		{[]string{"commit", "-m", "msg", "-a", "me", "-c", "ENV X=1", "--pause=false", "web", "img:1"}, "POST /commit", reply{201, map[string]string{"Id": "sha256:abc"}},
			"POST /commit", "author=me&changes=ENV+X%3D1&comment=msg&container=web&pause=0&repo=docker.io%2Flibrary%2Fimg&tag=1", "sha256:abc\n", 0, ""},
		{[]string{"update", "-m", "64m", "--cpus", "0.5", "--restart", "always", "web"}, "POST /containers/{id}/update", reply{200, map[string]any{"Warnings": []string{}}},
			"POST /containers/web/update", "", "web\n", 0, `"Memory":67108864`},
		{[]string{"port", "web"}, "GET /containers/{id}/json", reply{200, map[string]any{"Id": testID, "NetworkSettings": map[string]any{"Ports": map[string]any{
			"80/tcp": []map[string]string{{"HostIp": "0.0.0.0", "HostPort": "8080"}, {"HostIp": "::", "HostPort": "8080"}}, "53/udp": nil}}}},
			"GET /containers/web/json", "", "80/tcp -> 0.0.0.0:8080\n80/tcp -> [::]:8080\n", 0, ""},
		{[]string{"history", "busybox"}, "GET /images/{name}/history", reply{200, []map[string]any{
			{"Id": "sha256:8048b058d2810000", "Created": time.Now().Add(-2 * time.Hour).Unix(), "CreatedBy": "/bin/sh -c #(nop)  CMD [\"sh\"] and some more text here", "Size": 0},
			{"Id": "<missing>", "Created": time.Now().Add(-3 * time.Hour).Unix(), "CreatedBy": "ADD file:abc in /", "Size": 1986000, "Comment": "c"}}},
			"GET /images/busybox/history", "",
			"IMAGE          CREATED       CREATED BY                                      SIZE      COMMENT\n" +
				"8048b058d281   2 hours ago   /bin/sh -c #(nop)  CMD [\"sh\"] and some more …   0B        \n" +
				"<missing>      3 hours ago   ADD file:abc in /                               1.99MB    c\n", 0, ""},
		{[]string{"container", "prune", "-f"}, "POST /containers/prune", reply{200, map[string]any{"ContainersDeleted": []string{"a1"}, "SpaceReclaimed": 0}},
			"POST /containers/prune", "", "Deleted Containers:\na1\n\nTotal reclaimed space: 0B\n", 0, ""},
		{[]string{"image", "prune", "-a", "-f"}, "POST /images/prune", reply{200, map[string]any{"ImagesDeleted": []map[string]string{{"Untagged": "x:1"}, {"Deleted": "sha256:1"}}, "SpaceReclaimed": 1000}},
			"POST /images/prune", "filters=%7B%22dangling%22%3A%7B%22false%22%3Atrue%7D%7D", "Deleted Images:\nuntagged: x:1\ndeleted: sha256:1\n\nTotal reclaimed space: 1kB\n", 0, ""},
		{[]string{"network", "connect", "--alias", "db", "--ip", "10.0.0.5", "n1", "web"}, "POST /networks/{id}/connect", reply{200, nil}, "POST /networks/n1/connect", "", "", 0, `"Aliases":["db"]`},
		{[]string{"network", "disconnect", "-f", "n1", "web"}, "POST /networks/{id}/disconnect", reply{200, nil}, "POST /networks/n1/disconnect", "", "", 0, `"Force":true`},
		{[]string{"network", "rm", "n1"}, "DELETE /networks/{id}", reply{204, nil}, "DELETE /networks/n1", "", "n1\n", 0, ""},
		{[]string{"volume", "rm", "-f", "v1"}, "DELETE /volumes/{name}", reply{204, nil}, "DELETE /volumes/v1", "force=1", "v1\n", 0, ""},
		{[]string{"push", "localhost:5000/app:1"}, "POST /images/{name...}", reply{200, nil}, "POST /images/localhost:5000/app/push", "tag=1", "", 0, ""},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			f := newFakeDaemon(t)
			r := tc.reply
			f.handle(tc.pattern, func(w http.ResponseWriter, req *http.Request) {
				if r.status == 404 && !strings.Contains(req.URL.Path, "gone") {
					w.WriteHeader(204)
					return
				}
				if r.body == nil {
					w.WriteHeader(r.status)
					return
				}
				writeJSON(w, r.status, r.body)
			})
			res := runCLI(t, "", tc.args...)
			if res.code != tc.code || (tc.out != "" || tc.code == 0) && res.out != tc.out {
				t.Errorf("code %d out %q err %q; want code %d out %q", res.code, res.out, res.err, tc.code, tc.out)
			}
			if !f.seen(tc.call) {
				t.Fatalf("no %s in %v", tc.call, f.Calls())
			}
			if q := f.query(tc.call); q != tc.query {
				t.Errorf("query %q, want %q", q, tc.query)
			}
			if tc.bodyPart != "" && !bytes.Contains(f.body(tc.call), []byte(tc.bodyPart)) {
				t.Errorf("body %s lacks %s", f.body(tc.call), tc.bodyPart)
			}
		})
	}
}

func TestSaveLoadImport(t *testing.T) {
	f := newFakeDaemon(t)
	f.handle("GET /images/get", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("TARDATA")) })
	dir := t.TempDir()
	out := filepath.Join(dir, "img.tar")
	r := runCLI(t, "", "save", "-o", out, "busybox", "alpine")
	if b, _ := os.ReadFile(out); r.code != 0 || string(b) != "TARDATA" {
		t.Fatalf("save -o: %+v file %q", r, b)
	}
	if q := f.query("GET /images/get"); q != "names=busybox&names=alpine" {
		t.Errorf("save query %q", q)
	}
	var loaded []byte
	f.handle("POST /images/load", func(w http.ResponseWriter, r *http.Request) {
		loaded, _ = io.ReadAll(r.Body)
		fmt.Fprintln(w, `{"stream":"Loaded image: busybox:latest\n"}`)
	})
	r = runCLI(t, "", "load", "-i", out)
	if r.out != "Loaded image: busybox:latest\n" || string(loaded) != "TARDATA" {
		t.Errorf("load: %+v body %q", r, loaded)
	}
	if q := f.query("POST /images/load"); q != "quiet=1" {
		t.Errorf("load query %q (not a terminal: quiet)", q)
	}
	// import from stdin with changes.
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	_ = tw.WriteHeader(&tar.Header{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755})
	_ = tw.Close()
	var imported []byte
	f.handle("POST /images/create", func(w http.ResponseWriter, r *http.Request) {
		imported, _ = io.ReadAll(r.Body)
		fmt.Fprintln(w, `{"status":"sha256:feedface"}`)
	})
	r = runCLI(t, tarBuf.String(), "import", "-c", "CMD [\"sh\"]", "-m", "hello", "-", "me/root:1")
	if r.out != "sha256:feedface\n" || !bytes.Equal(imported, tarBuf.Bytes()) {
		t.Errorf("import: %+v", r)
	}
	q := f.query("POST /images/create")
	for _, p := range []string{"fromSrc=-", "repo=me%2Froot%3A1", "message=hello", "changes=CMD"} {
		if !strings.Contains(q, p) {
			t.Errorf("import query %q lacks %q", q, p)
		}
	}
}

func TestAttachExitStatus(t *testing.T) {
	f := newFakeDaemon(t)
	inspects := 0
	f.handle("GET /containers/{id}/json", func(w http.ResponseWriter, r *http.Request) {
		inspects++
		running := inspects == 1
		writeJSON(w, 200, map[string]any{"Id": testID, "Config": map[string]any{"Tty": false, "OpenStdin": false},
			"State": map[string]any{"Running": running, "ExitCode": 9}})
	})
	f.handle("POST /containers/{id}/attach", func(w http.ResponseWriter, r *http.Request) {
		if conn, _ := hijack(t, w); conn != nil {
			_, _ = conn.Write(frame(1, "attached output\n"))
			conn.Close()
		}
	})
	r := runCLI(t, "", "attach", "--no-stdin", "--sig-proxy=false", "web")
	if r.code != 9 || r.out != "attached output\n" {
		t.Fatalf("attach: %+v", r)
	}
	if q := f.query("POST /containers/" + testID + "/attach"); q != "detachKeys=ctrl-p%2Cctrl-q&stderr=1&stdout=1&stream=1" {
		t.Errorf("attach query %q", q)
	}
	// A stopped container cannot be attached.
	r = runCLI(t, "", "attach", "web")
	if r.code != 1 || r.err != "You cannot attach to a stopped container, start it first\n" {
		t.Errorf("attach stopped: %+v", r)
	}
}

func TestUseAPISocketMountsDaemonSocket(t *testing.T) {
	f := newFakeDaemon(t)
	f.json("POST /containers/create", 201, map[string]any{"Id": testID})
	r := runCLI(t, "", "create", "--use-api-socket", "--kernel-memory", "10m", "busybox")
	if r.code != 0 || r.out != testID+"\n" {
		t.Fatalf("create: %+v", r)
	}
	body := string(f.body("POST /containers/create"))
	if !strings.Contains(body, `"Source":"`+f.sock+`","Target":"/var/run/docker.sock"`) {
		t.Errorf("create body lacks the socket mount: %s", body)
	}
}

func TestStartAttachExitCode(t *testing.T) {
	f := newFakeDaemon(t)
	f.json("GET /containers/web/json", 200, map[string]any{"Id": testID, "Config": map[string]any{"Tty": false, "OpenStdin": false},
		"HostConfig": map[string]any{"AutoRemove": false}, "State": map[string]any{"Running": false}})
	f.handle("POST /containers/{id}/attach", func(w http.ResponseWriter, r *http.Request) {
		conn, _ := hijack(t, w)
		if conn == nil {
			return
		}
		f.waitFor("POST /containers/"+testID+"/start", 5*time.Second)
		_, _ = conn.Write(frame(1, "started\n"))
		conn.Close()
	})
	f.handle("POST /containers/{id}/wait", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		f.waitFor("POST /containers/"+testID+"/start", 5*time.Second)
		fmt.Fprintln(w, `{"StatusCode":12}`)
	})
	f.handle("POST /containers/{id}/start", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	r := runCLI(t, "", "start", "-a", "web")
	if r.code != 12 || r.out != "started\n" {
		t.Fatalf("start -a: %+v", r)
	}
	calls := f.Calls()
	want := []string{"GET /containers/web/json", "POST /containers/" + testID + "/attach", "POST /containers/" + testID + "/wait", "POST /containers/" + testID + "/start"}
	if !sameCalls(calls, want) {
		t.Errorf("calls %q want %q", calls, want)
	}
	if q := f.query("POST /containers/" + testID + "/wait"); q != "condition=next-exit" {
		t.Errorf("wait query %q", q)
	}
}
