package cgroups

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestMain doubles as a helper process: with BERTH_CG_HELPER set, the test
// binary waits for a line on stdin (sent once it is in the cgroup), then
// does the named action.
func TestMain(m *testing.M) {
	if act := os.Getenv("BERTH_CG_HELPER"); act != "" {
		helper(act)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

var sink [][]byte

func helper(act string) {
	in := bufio.NewReader(os.Stdin)
	in.ReadString('\n')
	verb, arg, _ := strings.Cut(act, " ")
	switch verb {
	case "alloc": // allocate and touch arg MiB, report, wait for EOF
		n, _ := strconv.Atoi(arg)
		for i := 0; i < n; i++ {
			b := make([]byte, 1<<20)
			for j := range b {
				b[j] = 1
			}
			sink = append(sink, b)
		}
		fmt.Println("ready")
		io.Copy(io.Discard, in)
	case "open": // try to open a device
		f, err := os.Open(arg)
		if err != nil {
			fmt.Println("denied:", err)
			return
		}
		f.Close()
		fmt.Println("ok")
	case "wait":
		fmt.Println("ready")
		io.Copy(io.Discard, in)
	}
}

// child is a helper process started outside any test cgroup and gated on
// stdin so the test can move it in first.
type child struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

func startChild(t *testing.T, act string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "BERTH_CG_HELPER="+act)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, in: in, out: bufio.NewReader(out)}
	t.Cleanup(func() {
		c.cmd.Process.Kill()
		c.cmd.Wait()
	})
	return c
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// goLine releases the child and returns its first line of output.
func (c *child) goLine(t *testing.T) string {
	t.Helper()
	if _, err := c.in.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	line, err := c.out.ReadString('\n')
	if err != nil {
		t.Fatalf("child output: %v (%q)", err, line)
	}
	return strings.TrimSpace(line)
}

func startSleep(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "300")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd
}

func testName(t testing.TB) string {
	b := make([]byte, 6)
	rand.Read(b)
	return "berth-test-" + hex.EncodeToString(b)
}

func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates real cgroups")
	}
}

func mustRead(t *testing.T, dir, file string) string {
	t.Helper()
	b, err := os.ReadFile(dir + "/" + file)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func expectFile(t *testing.T, dir, file, want string) {
	t.Helper()
	if got := mustRead(t, dir, file); got != want {
		t.Errorf("%s/%s = %q, want %q", dir, file, got, want)
	}
}

// waitExit waits for cmd and returns its state, failing after 10 s.
func waitExit(t *testing.T, cmd *exec.Cmd) *os.ProcessState {
	t.Helper()
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
		return cmd.ProcessState
	case <-time.After(10 * time.Second):
		t.Fatal("process did not exit")
		return nil
	}
}

func ptr[T any](v T) *T { return &v }
