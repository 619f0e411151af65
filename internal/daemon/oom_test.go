package daemon

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"

	"github.com/berth-dev/berth/internal/runtime/cgroups"
)

// TestOOMWatchV2 drives the cgroup v2 watcher with a memory.events file
// in a temporary directory: inotify reports the kernel's writes there as
// it does in a real cgroup. (The v1 eventfd path needs a memory cgroup:
// the e2e OOM test covers it.)
func TestOOMWatchV2(t *testing.T) {
	dir := t.TempDir()
	ev := filepath.Join(dir, "memory.events")
	write := func(kills int) {
		t.Helper()
		b := []byte("low 0\nhigh 0\nmax 3\noom 1\noom_kill " + string(rune('0'+kills)) + "\noom_group_kill 0\n")
		if err := os.WriteFile(ev, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(0)
	m, err := cgroups.LoadPaths(map[string]string{"": dir})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d := &Daemon{log: slog.Default(), events: newEventBus(), closeCtx: ctx}
	c := &Container{}
	c.ID, c.Name, c.Config = "abc", "/hog", &container.Config{}
	c.State.Status = container.StateRunning
	_, live := d.events.subscribe(time.Time{})

	d.watchOOMIn(c, m)
	next := func() events.Action {
		select {
		case msg := <-live:
			return msg.Action
		case <-time.After(5 * time.Second):
			return ""
		}
	}
	write(1)
	if a := next(); a != events.ActionOOM {
		t.Fatalf("after oom_kill 1: event %q, want oom", a)
	}
	write(1) // a change that is no new kill
	time.Sleep(100 * time.Millisecond)
	write(2)
	if a := next(); a != events.ActionOOM {
		t.Fatalf("after oom_kill 2: event %q, want oom", a)
	}
	select {
	case msg := <-live:
		t.Fatalf("extra event %q", msg.Action)
	case <-time.After(300 * time.Millisecond):
	}
	// The exit path owes nothing for kills already announced, one for a new one.
	c.mu.Lock()
	if oomOwed(c, 2) {
		t.Fatal("exit re-announces an announced kill")
	}
	if !oomOwed(c, 3) {
		t.Fatal("exit misses an unannounced kill")
	}
	c.mu.Unlock()

	// The cgroup's removal ends the watcher.
	if err := os.Remove(ev); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, ok := oomWatches.Load(c); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("watcher still registered after its cgroup went away")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Without a watcher, the exit path announces any kill.
	if !oomOwed(c, 1) || oomOwed(c, 0) {
		t.Fatal("oomOwed without a watcher")
	}
}
