package monitor

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

func threads(t *testing.T) int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Threads:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	t.Fatal("no Threads line")
	return 0
}

// WaitPid waits on the netpoller: 40 waiters take no thread each, each
// returns when its process exits, and a cancelled context ends a wait.
func TestWaitPidNoThreadPerWaiter(t *testing.T) {
	const n = 40
	var cmds []*exec.Cmd
	for i := 0; i < n; i++ {
		c := exec.Command("sleep", "30")
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, c)
	}
	t.Cleanup(func() {
		for _, c := range cmds {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
	})
	before := threads(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, n)
	for _, c := range cmds[1:] {
		go func(pid int) { done <- WaitPid(ctx, pid) }(c.Process.Pid)
	}
	first := make(chan error, 1)
	go func() { first <- WaitPid(context.Background(), cmds[0].Process.Pid) }()
	time.Sleep(300 * time.Millisecond)
	if after := threads(t); after > before+8 {
		t.Fatalf("threads %d -> %d while %d waits are pending: a thread per wait", before, after, n)
	}
	select {
	case err := <-first:
		t.Fatalf("WaitPid returned %v before the process exited", err)
	default:
	}
	_ = cmds[0].Process.Kill()
	select {
	case err := <-first:
		if err != nil {
			t.Fatalf("WaitPid after exit: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("WaitPid did not return after the process exited")
	}
	cancel()
	for i := 1; i < n; i++ {
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("cancelled WaitPid: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a cancelled WaitPid did not return")
		}
	}
	if err := WaitPid(context.Background(), 1<<22+12345); err != nil {
		t.Fatalf("WaitPid of a missing pid: %v", err)
	}
}
