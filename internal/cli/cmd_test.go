package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestNoDaemon(t *testing.T) {
	t.Setenv("BERTH_HOST", "unix:///nonexistent/berth.sock")
	r := runCLI(t, "", "ps")
	want := "Cannot connect to the berth daemon at unix:///nonexistent/berth.sock. Is the daemon running?\n"
	if r.code != 1 || r.err != want {
		t.Fatalf("ps without daemon: code %d, stderr %q; want 1, %q", r.code, r.err, want)
	}
	r = runCLI(t, "", "run", "busybox")
	if r.code != 125 || !strings.HasPrefix(r.err, "berth: Cannot connect to the berth daemon at unix:///nonexistent/berth.sock.") {
		t.Fatalf("run without daemon: code %d, stderr %q", r.code, r.err)
	}
}

func TestHostFlagOverridesEnv(t *testing.T) {
	f := newFakeDaemon(t)
	f.json("GET /containers/json", 200, []any{})
	t.Setenv("BERTH_HOST", "unix:///nonexistent")
	r := runCLI(t, "", "-H", "unix://"+f.sock, "ps", "-q")
	if r.code != 0 {
		t.Fatalf("code %d stderr %q", r.code, r.err)
	}
	if got := f.Calls(); !reflect.DeepEqual(got, []string{"GET /containers/json"}) {
		t.Fatalf("calls %v", got)
	}
}

// runDaemon fakes the endpoints `run` uses; the first create answers 404
// (no such image) when missing is true.
func runDaemon(t *testing.T, missing bool, exitCode int, output string) *fakeDaemon {
	f := newFakeDaemon(t)
	creates := 0
	f.handle("POST /containers/create", func(w http.ResponseWriter, r *http.Request) {
		creates++
		if missing && creates == 1 {
			writeJSON(w, 404, map[string]string{"message": "No such image: busybox:latest"})
			return
		}
		writeJSON(w, 201, map[string]any{"Id": testID, "Warnings": []string{}})
	})
	f.handle("POST /images/create", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		for _, m := range []string{
			`{"status":"Pulling from library/busybox","id":"latest"}`,
			`{"status":"Pulling fs layer","progressDetail":{},"id":"a46fbb00284b"}`,
			`{"status":"Pull complete","progressDetail":{},"id":"a46fbb00284b"}`,
			`{"status":"Digest: sha256:abc"}`,
			`{"status":"Status: Downloaded newer image for busybox:latest"}`,
		} {
			fmt.Fprintln(w, m)
		}
	})
	f.handle("POST /containers/{id}/attach", func(w http.ResponseWriter, r *http.Request) {
		conn, _ := hijack(t, w)
		if conn == nil {
			return
		}
		defer conn.Close()
		// An attach made before start must see the output: wait for start.
		f.waitFor("POST /containers/"+testID+"/start", 5*time.Second)
		_, _ = conn.Write(frame(1, output))
		_, _ = conn.Write(frame(2, "to stderr\n"))
	})
	f.handle("POST /containers/{id}/wait", func(w http.ResponseWriter, r *http.Request) {
		// Like dockerd: headers go out at once (the client's ContainerWait
		// returns only then), the status when the container exits.
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		f.waitFor("POST /containers/"+testID+"/start", 5*time.Second)
		_ = json.NewEncoder(w).Encode(map[string]any{"StatusCode": exitCode})
	})
	f.handle("POST /containers/{id}/start", func(w http.ResponseWriter, r *http.Request) {
		// docker's order is attach, wait, start: give the wait a moment to arrive.
		if f.seen("POST /containers/" + testID + "/attach") {
			f.waitFor("POST /containers/"+testID+"/wait", 5*time.Second)
		}
		w.WriteHeader(204)
	})
	return f
}

func TestRunPullsMissingImageAndPassesExitCode(t *testing.T) {
	f := runDaemon(t, true, 3, "hello\n")
	r := runCLI(t, "", "run", "--rm", "busybox", "echo", "hello")
	if r.code != 3 {
		t.Fatalf("exit code %d, want 3 (stderr %q)", r.code, r.err)
	}
	if r.out != "hello\n" {
		t.Errorf("stdout %q, want %q", r.out, "hello\n")
	}
	if !strings.HasPrefix(r.err, "Unable to find image 'busybox:latest' locally\n") ||
		!strings.Contains(r.err, "Status: Downloaded newer image for busybox:latest") ||
		!strings.HasSuffix(r.err, "to stderr\n") {
		t.Errorf("stderr %q", r.err)
	}
	id := testID
	want := []string{
		"POST /containers/create", "POST /images/create", "POST /containers/create",
		"POST /containers/" + id + "/attach", "POST /containers/" + id + "/wait", "POST /containers/" + id + "/start",
	}
	if got := f.Calls(); !sameCalls(got, want) {
		t.Fatalf("calls:\n got %q\nwant %q", got, want)
	}
	if q := f.query("POST /images/create"); q != "fromImage=docker.io%2Flibrary%2Fbusybox&tag=latest" {
		t.Errorf("pull query %q", q)
	}
	if q := f.query("POST /containers/" + id + "/wait"); q != "condition=removed" {
		t.Errorf("--rm must wait for removal, query %q", q)
	}
	if q := f.query("POST /containers/" + id + "/attach"); q != "detachKeys=ctrl-p%2Cctrl-q&stderr=1&stdout=1&stream=1" {
		t.Errorf("attach query %q", q)
	}
	var body struct {
		Cmd        []string
		Image      string
		HostConfig struct{ AutoRemove bool }
	}
	if err := json.Unmarshal(f.body("POST /containers/create"), &body); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(body.Cmd, []string{"echo", "hello"}) || body.Image != "busybox" || !body.HostConfig.AutoRemove {
		t.Errorf("create body %+v", body)
	}
}

func TestRunDetachedPrintsID(t *testing.T) {
	f := runDaemon(t, false, 0, "")
	r := runCLI(t, "", "run", "-d", "--name", "web", "busybox", "sleep", "100")
	if r.code != 0 || r.out != testID+"\n" {
		t.Fatalf("code %d out %q err %q", r.code, r.out, r.err)
	}
	// Detached: no attach and no wait request, only create and start.
	calls := f.Calls()
	if len(calls) != 2 || calls[0] != "POST /containers/create" || calls[1] != "POST /containers/"+testID+"/start" {
		t.Fatalf("calls %q", calls)
	}
	if q := f.query("POST /containers/create"); q != "name=web" {
		t.Errorf("create query %q", q)
	}
}

func TestRunStartErrorsMapToDockerCodes(t *testing.T) {
	for _, tc := range []struct {
		msg  string
		code int
	}{
		{`failed to create task: exec: "nosuch": executable file not found in $PATH`, 127},
		{`exec: "/etc": permission denied`, 126},
		{`cgroup setup failed`, 125},
	} {
		f := newFakeDaemon(t)
		f.json("POST /containers/create", 201, map[string]any{"Id": testID})
		f.json("POST /containers/{id}/start", 500, map[string]string{"message": tc.msg})
		f.json("POST /containers/{id}/wait", 200, map[string]any{"StatusCode": 0})
		f.handle("POST /containers/{id}/attach", func(w http.ResponseWriter, r *http.Request) {
			if conn, _ := hijack(t, w); conn != nil {
				time.Sleep(50 * time.Millisecond)
				conn.Close()
			}
		})
		r := runCLI(t, "", "run", "busybox", "nosuch")
		if r.code != tc.code {
			t.Errorf("%q: code %d, want %d", tc.msg, r.code, tc.code)
		}
		want := "berth: Error response from daemon: " + tc.msg + "\n\nRun 'berth run --help' for more information\n"
		if r.err != want {
			t.Errorf("stderr %q\nwant   %q", r.err, want)
		}
	}
}

func TestPsTable(t *testing.T) {
	f := newFakeDaemon(t)
	now := time.Now()
	f.json("GET /containers/json", 200, []map[string]any{
		{"Id": testID, "Names": []string{"/web"}, "Image": "busybox", "ImageID": "sha256:8048b058d281",
			"Command": "sleep 100", "Created": now.Add(-3 * time.Minute).Unix(), "State": "running", "Status": "Up 3 minutes",
			"Ports": []map[string]any{{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}, {"PrivatePort": 443, "Type": "tcp"}}},
		{"Id": "ab" + testID[2:], "Names": []string{"/db"}, "Image": "sha256:8048b058d2810000000000000000000000000000000000000000000000000000",
			"Command": "a very long command line that goes on", "Created": now.Add(-90 * time.Second).Unix(), "State": "exited", "Status": "Exited (0) 3 seconds ago"},
	})
	r := runCLI(t, "", "ps", "-a")
	want := "CONTAINER ID   IMAGE          COMMAND                  CREATED              STATUS                     PORTS                           NAMES\n" +
		"4f66ad9a0b2e   busybox        \"sleep 100\"              3 minutes ago        Up 3 minutes               443/tcp, 0.0.0.0:8080->80/tcp   web\n" +
		"ab66ad9a0b2e   8048b058d281   \"a very long command…\"   About a minute ago   Exited (0) 3 seconds ago                                   db\n"
	if r.out != want || r.code != 0 {
		t.Fatalf("ps -a (code %d):\n%s\nwant:\n%s", r.code, r.out, want)
	}
	if q := f.query("GET /containers/json"); q != "all=1" {
		t.Errorf("query %q", q)
	}
	r = runCLI(t, "", "ps", "-q", "--no-trunc")
	if r.out != testID+"\nab"+testID[2:]+"\n" {
		t.Errorf("ps -q --no-trunc: %q", r.out)
	}
	r = runCLI(t, "", "ps", "--format", "{{.Names}}\t{{.State}}")
	if r.out != "web\trunning\ndb\texited\n" {
		t.Errorf("ps --format: %q", r.out)
	}
	r = runCLI(t, "", "ps", "--format", "table {{.ID}}\\t{{.Names}}")
	if r.out != "CONTAINER ID   NAMES\n4f66ad9a0b2e   web\nab66ad9a0b2e   db\n" {
		t.Errorf("ps --format table: %q", r.out)
	}
	r = runCLI(t, "", "ps", "-n", "2", "-f", "status=exited", "-f", "name=db")
	if q := f.query("GET /containers/json"); q != `all=1&filters=%7B%22name%22%3A%7B%22db%22%3Atrue%7D%2C%22status%22%3A%7B%22exited%22%3Atrue%7D%7D&limit=2` {
		t.Errorf("ps -n 2 --filter query %q", q)
	}
	r = runCLI(t, "", "ps", "--format", "json")
	var row map[string]any
	if err := json.Unmarshal([]byte(strings.SplitN(r.out, "\n", 2)[0]), &row); err != nil {
		t.Fatalf("ps --format json: %v: %q", err, r.out)
	}
	if row["Names"] != "web" || row["Command"] != `"sleep 100"` || row["RunningFor"] != "3 minutes ago" {
		t.Errorf("json row %v", row)
	}
}

func TestImagesTable(t *testing.T) {
	f := newFakeDaemon(t)
	now := time.Now()
	f.json("GET /images/json", 200, []map[string]any{
		{"Id": "sha256:8048b058d281aaaa", "RepoTags": []string{"busybox:latest", "127.0.0.1:5000/busybox:v2s2"},
			"RepoDigests": []string{"127.0.0.1:5000/busybox@sha256:95a40e63"}, "Created": now.Add(-4 * time.Minute).Unix(), "Size": 1986000, "Containers": -1, "SharedSize": -1},
		{"Id": "sha256:1111222233334444", "RepoTags": []string{}, "RepoDigests": []string{}, "Created": now.Add(-48 * time.Hour).Unix(), "Size": 123456789, "Containers": -1, "SharedSize": -1},
	})
	r := runCLI(t, "", "images")
	want := "REPOSITORY               TAG       IMAGE ID       CREATED         SIZE\n" +
		"127.0.0.1:5000/busybox   v2s2      8048b058d281   4 minutes ago   1.99MB\n" +
		"busybox                  latest    8048b058d281   4 minutes ago   1.99MB\n" +
		"<none>                   <none>    111122223333   2 days ago      123MB\n"
	if r.out != want {
		t.Fatalf("images:\n%s\nwant:\n%s", r.out, want)
	}
	r = runCLI(t, "", "images", "--digests")
	if !strings.Contains(r.out, "127.0.0.1:5000/busybox   v2s2      sha256:95a40e63   8048b058d281") ||
		!strings.Contains(r.out, "busybox                  latest    <none>            8048b058d281") {
		t.Errorf("images --digests:\n%s", r.out)
	}
	r = runCLI(t, "", "images", "-q")
	if r.out != "8048b058d281\n8048b058d281\n111122223333\n" {
		t.Errorf("images -q: %q", r.out)
	}
	r = runCLI(t, "", "image", "ls", "--format", "{{.Repository}}:{{.Tag}} {{.Size}}", "busybox")
	if !strings.Contains(r.out, "\nbusybox:latest 1.99MB\n") {
		t.Errorf("image ls --format: %q", r.out)
	}
	if q := f.query("GET /images/json"); q != "filters=%7B%22reference%22%3A%7B%22busybox%22%3Atrue%7D%7D" {
		t.Errorf("reference filter query %q", q)
	}
}

func TestRmiPrintsUntaggedDeleted(t *testing.T) {
	f := newFakeDaemon(t)
	f.json("DELETE /images/busybox", 200, []map[string]string{{"Untagged": "busybox:latest"}, {"Deleted": "sha256:8048b058d281"}})
	f.json("DELETE /images/nosuch", 404, map[string]string{"message": "No such image: nosuch:latest"})
	r := runCLI(t, "", "rmi", "-f", "busybox", "nosuch")
	if r.out != "Untagged: busybox:latest\nDeleted: sha256:8048b058d281\n" {
		t.Errorf("stdout %q", r.out)
	}
	if r.err != "Error response from daemon: No such image: nosuch:latest\n" || r.code != 1 {
		t.Errorf("stderr %q code %d", r.err, r.code)
	}
	if q := f.query("DELETE /images/busybox"); q != "force=1" {
		t.Errorf("query %q", q)
	}
}

func TestStopRmErrorsCollected(t *testing.T) {
	f := newFakeDaemon(t)
	f.handle("POST /containers/{id}/stop", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") == "gone" {
			writeJSON(w, 404, map[string]string{"message": "No such container: gone"})
			return
		}
		w.WriteHeader(204)
	})
	r := runCLI(t, "", "stop", "-t", "3", "web", "gone")
	if r.out != "web\n" || r.err != "Error response from daemon: No such container: gone\n" || r.code != 1 {
		t.Fatalf("stop: %+v", r)
	}
	if q := f.query("POST /containers/web/stop"); q != "t=3" {
		t.Errorf("stop query %q", q)
	}
	f.handle("DELETE /containers/{id}", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	r = runCLI(t, "", "rm", "-fv", "web")
	if r.out != "web\n" || r.code != 0 || f.query("DELETE /containers/web") != "force=1&v=1" {
		t.Fatalf("rm: %+v query %q", r, f.query("DELETE /containers/web"))
	}
}

func TestLogsDemux(t *testing.T) {
	f := newFakeDaemon(t)
	f.json("GET /containers/web/json", 200, map[string]any{"Id": testID, "Config": map[string]any{"Tty": false}, "State": map[string]any{}})
	f.handle("GET /containers/{id}/logs", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/vnd.docker.multiplexed-stream")
		_, _ = w.Write(frame(1, "out line\n"))
		_, _ = w.Write(frame(2, "err line\n"))
	})
	r := runCLI(t, "", "logs", "--tail", "5", "-t", "--since", "42m", "web")
	if r.out != "out line\n" || r.err != "err line\n" || r.code != 0 {
		t.Fatalf("logs: %+v", r)
	}
	q := f.query("GET /containers/" + testID + "/logs")
	for _, p := range []string{"stdout=1", "stderr=1", "tail=5", "timestamps=1", "since="} {
		if !strings.Contains(q, p) {
			t.Errorf("logs query %q lacks %q", q, p)
		}
	}
}

func TestExecExitCode(t *testing.T) {
	f := newFakeDaemon(t)
	f.json("POST /containers/web/exec", 201, map[string]string{"Id": "execid"})
	f.handle("POST /exec/execid/start", func(w http.ResponseWriter, r *http.Request) {
		conn, _ := hijack(t, w)
		if conn == nil {
			return
		}
		_, _ = conn.Write(frame(1, "in exec\n"))
		conn.Close()
	})
	f.json("GET /exec/execid/json", 200, map[string]any{"ID": "execid", "Running": false, "ExitCode": 7})
	r := runCLI(t, "", "exec", "-e", "A=1", "-w", "/tmp", "-u", "nobody", "web", "sh", "-c", "exit 7")
	if r.code != 7 || r.out != "in exec\n" {
		t.Fatalf("exec: %+v", r)
	}
	var body struct {
		Cmd        []string
		Env        []string
		WorkingDir string
		User       string
	}
	_ = json.Unmarshal(f.body("POST /containers/web/exec"), &body)
	if !reflect.DeepEqual(body.Cmd, []string{"sh", "-c", "exit 7"}) || body.WorkingDir != "/tmp" || body.User != "nobody" || !reflect.DeepEqual(body.Env, []string{"A=1"}) {
		t.Errorf("exec create body %+v", body)
	}
}

func TestInspectTemplateAndMissing(t *testing.T) {
	f := newFakeDaemon(t)
	f.json("GET /containers/web/json", 200, map[string]any{"Id": testID, "Name": "/web",
		"State": map[string]any{"Running": true, "ExitCode": 0}, "HostConfig": map[string]any{"Memory": 1073741824},
		"Config": map[string]any{"Env": []string{"A=1", "B=2"}}})
	f.json("GET /containers/nosuch/json", 404, map[string]string{"message": "No such container: nosuch"})
	f.json("GET /images/nosuch/json", 404, map[string]string{"message": "No such image: nosuch"})
	f.json("GET /volumes/nosuch", 404, map[string]string{"message": "no such volume"})
	f.json("GET /networks/nosuch", 404, map[string]string{"message": "network nosuch not found"})
	f.json("GET /plugins/nosuch/json", 404, map[string]string{"message": "plugin not found"})
	f.json("GET /secrets/nosuch", 503, map[string]string{"message": "This node is not a swarm manager."})
	f.json("GET /configs/nosuch", 503, map[string]string{"message": "This node is not a swarm manager."})
	r := runCLI(t, "", "inspect", "-f", "{{.Name}} {{.State.Running}} {{.HostConfig.Memory}} {{join .Config.Env \",\"}} {{upper \"x\"}}", "web")
	if r.out != "/web true 1073741824 A=1,B=2 X\n" || r.code != 0 {
		t.Fatalf("inspect -f: %+v", r)
	}
	r = runCLI(t, "", "inspect", "-f", "{{.Nope}}", "web")
	if r.code != 1 || r.out != "\n" || !strings.HasPrefix(r.err, "template parsing error: ") || !strings.Contains(r.err, `map has no entry for key "Nope"`) {
		t.Errorf("inspect -f missing key: %+v", r)
	}
	r = runCLI(t, "", "inspect", "nosuch")
	if r.out != "[]\n" || r.err != "Error: No such object: nosuch\n" || r.code != 1 {
		t.Fatalf("inspect nosuch: %+v", r)
	}
	r = runCLI(t, "", "container", "inspect", "web")
	var arr []map[string]any
	if err := json.Unmarshal([]byte(r.out), &arr); err != nil || len(arr) != 1 || arr[0]["Id"] != testID {
		t.Fatalf("container inspect output %q: %v", r.out, err)
	}
	if !strings.HasPrefix(r.out, "[\n    {\n        \"") {
		t.Errorf("inspect JSON not indented like docker: %q", r.out[:20])
	}
}

func TestSwarmErrorsComeFromDaemon(t *testing.T) {
	f := newFakeDaemon(t)
	msg := "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again."
	f.json("GET /secrets", 503, map[string]string{"message": msg})
	r := runCLI(t, "", "secret", "ls")
	if r.err != "Error response from daemon: "+msg+"\n" || r.code != 1 {
		t.Fatalf("secret ls: %+v", r)
	}
	f.json("GET /plugins", 200, []any{})
	r = runCLI(t, "", "plugin", "ls")
	if r.out != "ID        NAME      DESCRIPTION   ENABLED\n" || r.code != 0 {
		t.Fatalf("plugin ls: %q", r.out)
	}
}

func TestUsageErrors(t *testing.T) {
	newFakeDaemon(t)
	r := runCLI(t, "", "ps", "extra")
	if r.code != 1 || !strings.HasPrefix(r.err, "berth: 'berth ps' accepts no arguments\n\nUsage:  berth ps [OPTIONS]\n") {
		t.Errorf("ps extra: %+v", r)
	}
	r = runCLI(t, "", "run", "--nosuchflag", "busybox")
	if r.code != 125 || !strings.HasPrefix(r.err, "unknown flag: --nosuchflag\n\nUsage:  berth run [OPTIONS] IMAGE [COMMAND] [ARG...]") {
		t.Errorf("run --nosuchflag: %+v", r)
	}
	r = runCLI(t, "", "nosuchcmd")
	if r.code != 1 || r.err != "berth: unknown command: berth nosuchcmd\n\nRun 'berth --help' for more information\n" {
		t.Errorf("unknown command: %+v", r)
	}
	r = runCLI(t, "", "rm")
	if r.code != 1 || !strings.Contains(r.err, "'berth rm' requires at least 1 argument") {
		t.Errorf("rm: %+v", r)
	}
	r = runCLI(t, "", "run", "--restart", "always", "--rm", "busybox")
	if r.code != 125 || !strings.Contains(r.err, "conflicting options: cannot specify both --restart and --rm") {
		t.Errorf("--rm --restart: %+v", r)
	}
}

func TestHelpAndVersion(t *testing.T) {
	r := runCLI(t, "", "--help")
	for _, s := range []string{"Usage:  berth [OPTIONS] COMMAND", "Common Commands:\n  run ", "Management Commands:\n  container ",
		"Global Options:", "-H, --host", "Run 'berth COMMAND --help' for more information on a command."} {
		if !strings.Contains(r.out, s) {
			t.Errorf("help lacks %q:\n%s", s, r.out)
		}
	}
	r = runCLI(t, "", "run", "--help")
	if !strings.Contains(r.out, "Usage:  berth run [OPTIONS] IMAGE [COMMAND] [ARG...]") || !strings.Contains(r.out, "-h, --hostname string") ||
		!strings.Contains(r.out, "--help ") || strings.Contains(r.out, "Global Options") {
		t.Errorf("run --help:\n%s", r.out)
	}
	r = runCLI(t, "", "help", "ps")
	if !strings.Contains(r.out, "Usage:  berth ps [OPTIONS]") {
		t.Errorf("help ps: %q", r.out)
	}
	r = runCLI(t, "", "--version")
	if r.out != "berth version "+Version+", build "+GitCommit+"\n" {
		t.Errorf("--version: %q", r.out)
	}
	r = runCLI(t, "", "completion", "bash")
	if r.code != 0 || !strings.Contains(r.out, "bash completion") {
		t.Errorf("completion bash: code %d", r.code)
	}
}

func TestVersionServerSection(t *testing.T) {
	f := newFakeDaemon(t)
	f.json("GET /version", 200, map[string]any{"Version": "0.1.0", "ApiVersion": "1.41", "MinAPIVersion": "1.24", "Os": "linux", "Arch": "amd64",
		"GitCommit": "abc", "GoVersion": "go1.26", "KernelVersion": "6.18", "BuildTime": "now",
		"Components": []map[string]any{{"Name": "Engine", "Version": "0.1.0", "Details": map[string]string{
			"ApiVersion": "1.41", "MinAPIVersion": "1.24", "GoVersion": "go1.26", "GitCommit": "abc", "BuildTime": "now", "Os": "linux", "Arch": "amd64", "Experimental": "false"}}}})
	r := runCLI(t, "", "version")
	for _, s := range []string{"Client: berth\n Version:           " + Version, " API version:       1.41 (downgraded from 1.57)",
		"Server:\n Engine:\n  Version:          0.1.0\n  API version:      1.41 (minimum version 1.24)"} {
		if !strings.Contains(r.out, s) {
			t.Errorf("version lacks %q:\n%s", s, r.out)
		}
	}
	r = runCLI(t, "", "version", "--format", "{{.Server.Version}}")
	if r.out != "0.1.0\n" {
		t.Errorf("version --format: %q", r.out)
	}
	// the server fields docker's --format reaches (they were missing)
	r = runCLI(t, "", "version", "--format", "{{.Server.GitCommit}} {{.Server.GoVersion}} {{.Server.KernelVersion}} {{.Server.BuildTime}}")
	if r.out != "abc go1.26 6.18 now\n" || r.code != 0 {
		t.Errorf("version --format server fields: %q %q", r.out, r.err)
	}
}

func TestPullAuthHeaderFromConfig(t *testing.T) {
	f := newFakeDaemon(t)
	var auth string
	f.handle("POST /images/create", func(w http.ResponseWriter, r *http.Request) {
		auth = r.Header.Get("X-Registry-Auth")
		fmt.Fprintln(w, `{"status":"Status: Image is up to date for localhost:5000/app:1"}`)
	})
	f.json("POST /auth", 200, map[string]string{"Status": "Login Succeeded"})
	r := runCLI(t, "", "login", "-u", "alice", "-p", "secret", "localhost:5000")
	if r.code != 0 || r.out != "Login Succeeded\n" {
		t.Fatalf("login: %+v", r)
	}
	r = runCLI(t, "", "pull", "localhost:5000/app:1")
	if r.code != 0 || !strings.HasSuffix(r.out, "\nlocalhost:5000/app:1\n") {
		t.Fatalf("pull: %+v", r)
	}
	if auth == "" {
		t.Fatal("no X-Registry-Auth header sent")
	}
	r = runCLI(t, "", "logout", "localhost:5000")
	if r.out != "Removing login credentials for localhost:5000\n" {
		t.Errorf("logout: %q", r.out)
	}
}

// sameCalls compares call lists in which run sends attach and wait at once:
// which of the two the server sees first is the scheduler's choice.
func sameCalls(got, want []string) bool {
	norm := func(c []string) []string {
		c = append([]string(nil), c...)
		for i := 0; i+1 < len(c); i++ {
			if strings.HasSuffix(c[i], "/wait") && strings.HasSuffix(c[i+1], "/attach") {
				c[i], c[i+1] = c[i+1], c[i]
			}
		}
		return c
	}
	return reflect.DeepEqual(norm(got), norm(want))
}
