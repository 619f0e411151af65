package e2e

import (
	"net"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// dockerdSock is where the peers script (../shared/peers/setup-peers.sh)
// starts Debian's dockerd 20.10.
const dockerdSock = "/run/docker.sock"

// TestOutputsMatchDockerd runs the same docker CLI commands against berth and
// against a real dockerd, and compares what users see: output and exit
// status, with container IDs and hostnames normalized. Where berth's words
// cannot match (dockerd names its shim and runc in runtime errors), the case
// compares the status and the part of the message that users act on.
func TestOutputsMatchDockerd(t *testing.T) {
	dockerCLI(t)
	requireRegistry(t)
	if c, err := net.DialTimeout("unix", dockerdSock, time.Second); err != nil {
		t.Skipf("needs dockerd on %s (../shared/peers/setup-peers.sh): %v", dockerdSock, err)
	} else {
		c.Close()
	}
	d := startDaemon(t)
	// Output is stdout, then a marker, then stderr: their interleaving
	// is scheduling, not behaviour.
	cli := func(host string, args ...string) (string, int) {
		out, errs, code := dockerAt(t, host, args...) // search_test.go
		if errs != "" {
			out += "--- stderr:\n" + errs
		}
		return out, code
	}
	peer := func(args ...string) (string, int) { return cli("unix://"+dockerdSock, args...) }
	ours := func(args ...string) (string, int) { return cli("unix://"+d.sock, args...) }
	if out, code := peer("pull", "-q", bb); code != 0 {
		t.Skipf("dockerd cannot pull %s: %s", bb, out)
	}
	d.must("docker", "pull", "-q", bb)

	hex := regexp.MustCompile(`\b[0-9a-f]{64}\b|\b[0-9a-f]{12}\b`)
	norm := func(s string) string { return hex.ReplaceAllString(s, "<id>") }

	exact := [][]string{
		{"run", "--rm", bb, "echo", "hello"},
		{"run", "--rm", bb, "sh", "-c", "echo out; echo err >&2; exit 3"},
		{"run", "--rm", "-w", "/made/here", bb, "pwd"},
		{"run", "--rm", "-u", "1000:1000", bb, "id"},
		{"run", "--rm", "-u", "nobody", bb, "sh", "-c", "id; echo $HOME"},
		{"run", "--rm", "-e", "A=b", "--env", "C", bb, "env"},
		{"run", "--rm", "--hostname", "h1", bb, "hostname"},
		{"run", "--rm", bb, "sh", "-c", `grep -E "^(Cap|Seccomp|NoNewPrivs)" /proc/self/status`},
		{"run", "--rm", "--cap-drop", "ALL", "--cap-add", "NET_ADMIN", bb, "sh", "-c", `grep -E "^Cap" /proc/self/status`},
		{"run", "--rm", "--security-opt", "no-new-privileges", bb, "sh", "-c", `grep NoNewPrivs /proc/self/status`},
		{"run", "--rm", bb, "ls", "/dev"},
		{"run", "--rm", bb, "sh", "-c", "ulimit -a"},
		{"run", "--rm", "--read-only", bb, "touch", "/x"},
		{"run", "--rm", "--network", "none", bb, "ip", "addr"}, // lo up, 127.0.0.1
		{"run", "--rm", "-t", bb, "tty"},
		{"run", "--rm", "--pids-limit", "10", bb, "cat", "/sys/fs/cgroup/pids/pids.max"},
		{"run", "--rm", "--memory", "64m", bb, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"},
		{"run", "--rm", "--cpus", "0.5", bb, "cat", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu/cpu.cfs_period_us"},
		{"run", "--rm", "--memory", "1k", bb, "true"},
		{"run", "--rm", "--name", "bad/name", bb, "true"},
		{"run", "--rm", "--stop-signal", "FOO", bb, "true"},
		{"run", "--rm", "--restart", "always", bb, "true"},
		{"rm", "nosuch"},
		{"stop", "nosuch"},
		{"images", "nosuch"},
		{"ps", "-a", "--filter", "name=nothing-matches", "--format", "{{.Names}}"},
		{"pull", registry + "/nosuch:latest"},
	}
	for _, args := range exact {
		if strings.HasPrefix(args[len(args)-1], "/sys/fs/cgroup/") && !dirExists("/sys/fs/cgroup/memory") {
			continue // the paths are cgroup v1's
		}
		want, wcode := peer(args...)
		if wcode == -1 {
			t.Logf("dockerd did not answer docker %s in time; case skipped", strings.Join(args, " "))
			continue
		}
		got, gcode := ours(args...)
		if norm(got) != norm(want) || gcode != wcode {
			t.Errorf("docker %s:\nberth (exit %d):\n%s\ndockerd (exit %d):\n%s", strings.Join(args, " "), gcode, got, wcode, want)
		}
	}

	// Runtime errors: dockerd wraps them in shim and runc words.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--rm", bb, "nosuchcmd"}, `exec: "nosuchcmd": executable file not found in $PATH`},
		{[]string{"run", "--rm", bb, "/etc"}, `exec: "/etc": permission denied`},
	} {
		want, wcode := peer(c.args...)
		if wcode == -1 {
			continue // dockerd too slow here; logged above for the others
		}
		got, gcode := ours(c.args...)
		if gcode != wcode || !strings.Contains(got, c.want) || !strings.Contains(want, c.want) {
			t.Errorf("docker %s:\nberth (exit %d):\n%s\ndockerd (exit %d):\n%s", strings.Join(c.args, " "), gcode, got, wcode, want)
		}
	}

	// Container lifecycle as ps, inspect and logs show it.
	for _, side := range []struct {
		name string
		run  func(...string) (string, int)
	}{{"berth", ours}, {"dockerd", peer}} {
		_, _ = side.run("rm", "-f", "cmp-life")
		if out, code := side.run("run", "-d", "--name", "cmp-life", bb, "sh", "-c", "echo one; echo two >&2; sleep 100"); code != 0 {
			t.Fatalf("%s: run -d: %s", side.name, out)
		}
	}
	defer func() { _, _ = ours("rm", "-f", "cmp-life"); _, _ = peer("rm", "-f", "cmp-life") }()
	time.Sleep(500 * time.Millisecond)
	for _, args := range [][]string{
		{"logs", "cmp-life"},
		{"logs", "--tail", "abc", "cmp-life"}, // not a number: all lines
		{"logs", "--tail", "-1", "cmp-life"},
		{"inspect", "-f", "{{.State.Status}} {{.State.Running}} {{.State.Paused}} {{.Config.Cmd}} {{.Path}} {{.Args}} {{.HostConfig.NetworkMode}} {{.HostConfig.RestartPolicy.Name}} {{.Name}}", "cmp-life"},
		{"ps", "--filter", "name=cmp-life", "--format", "{{.Names}} {{.Command}} {{.Status}}"},
		{"pause", "cmp-life"},
		{"pause", "cmp-life"},
		{"inspect", "-f", "{{.State.Status}} {{.State.Paused}}", "cmp-life"},
		{"unpause", "cmp-life"},
		{"unpause", "cmp-life"},
		// Not "rm cmp-life" while running: berth answers with current
		// moby's words, dockerd 20.10 with its own older ones.
		{"stop", "-t", "1", "cmp-life"},
		{"inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "cmp-life"},
		{"start", "cmp-life"},
		{"kill", "cmp-life"},
		{"kill", "cmp-life"},
		{"inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "cmp-life"},
	} {
		want, wcode := peer(args...)
		if wcode == -1 {
			t.Logf("dockerd did not answer docker %s in time; case skipped", strings.Join(args, " "))
			continue
		}
		got, gcode := ours(args...)
		// "Up Less than a second" vs "Up 1 second" is timing, not shape.
		re := regexp.MustCompile(`Up [^\n]*`)
		if re.ReplaceAllString(norm(got), "Up <t>") != re.ReplaceAllString(norm(want), "Up <t>") || gcode != wcode {
			t.Errorf("docker %s:\nberth (exit %d):\n%s\ndockerd (exit %d):\n%s", strings.Join(args, " "), gcode, got, wcode, want)
		}
	}
}

func dirExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}
