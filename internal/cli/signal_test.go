package cli

import (
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSIGTERM runs the CLI in a child process against a fake daemon that
// never finishes answering, and sends the child SIGTERM once its request
// arrived. A streaming command (`logs -f`) cancels its request and exits 1,
// as docker does; a detached `run -d` installs no handler (it holds no
// stream) and dies of the signal.
func TestSIGTERM(t *testing.T) {
	f := newFakeDaemon(t)
	block := make(chan struct{})
	t.Cleanup(func() { close(block) })
	hold := func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}
	f.json("GET /containers/web/json", 200, map[string]any{"Id": testID, "Config": map[string]any{"Tty": false}, "State": map[string]any{}})
	f.handle("GET /containers/{id}/logs", hold)
	f.handle("POST /containers/create", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	})
	for _, tc := range []struct {
		args     []string
		call     string
		signaled bool
	}{
		{[]string{"logs", "-f", "web"}, "GET /containers/" + testID + "/logs", false},
		{[]string{"run", "-d", "--network", "none", "busybox"}, "POST /containers/create", true},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCLIChild$")
		cmd.Env = append(os.Environ(), "BERTH_CLI_CHILD="+strings.Join(tc.args, "\x1f"))
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitCall(t, f, tc.call)
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
		if tc.signaled {
			if !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
				t.Errorf("%v: want death by SIGTERM, got %v (stderr %q)", tc.args, cmd.ProcessState, stderr.String())
			}
			continue
		}
		if ws.Signaled() || ws.ExitStatus() != 1 || !strings.Contains(stderr.String(), "context canceled") {
			t.Errorf("%v: want exit 1 with \"context canceled\", got %v (stderr %q)", tc.args, cmd.ProcessState, stderr.String())
		}
	}
}

// waitCall waits until the fake daemon has received call.
func waitCall(t *testing.T, f *fakeDaemon, call string) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case c := <-f.called:
			if c == call {
				return
			}
		case <-deadline:
			t.Fatalf("the daemon never received %s (calls: %v)", call, f.Calls())
		}
	}
}

// TestCLIChild is the child process of TestSIGTERM.
func TestCLIChild(t *testing.T) {
	args := os.Getenv("BERTH_CLI_CHILD")
	if args == "" {
		t.Skip("the child process of TestSIGTERM")
	}
	os.Exit(Main(strings.Split(args, "\x1f")))
}
