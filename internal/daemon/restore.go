package daemon

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"

	"github.com/berth-dev/berth/internal/monitor"
	"github.com/berth-dev/berth/internal/network"
	bruntime "github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/snapshot"
)

// restore loads the recorded containers, reattaches to the monitors of those
// still running, records the exits that happened while the daemon was down
// (the monitor wrote them), applies restart policies, and sweeps what a
// crash left without a record: writable snapshots, state dirs, namespaces,
// runtime state and cgroups.
func (d *Daemon) restore(ctx context.Context) error {
	recs, err := d.loadRecords()
	if err != nil {
		return err
	}
	known := map[string]bool{}
	var exited, pending, autostart []*Container
	for _, c := range recs {
		c.exitCh = make(chan struct{})
		c.removedCh = make(chan struct{})
		c.execs = map[string]*execProc{}
		known[c.ID] = true
		d.ctrs.add(c)
		switch c.State.Status {
		case container.StateRunning, container.StatePaused, container.StateRestarting:
			if p, ok := monitor.Find(d.stateDir(c.ID)); ok {
				c.monitorPid = p.Pid
				d.watch(c, p)
				if c.State.Status == container.StateRunning {
					c.mu.Lock()
					d.startHealth(c)
					c.mu.Unlock()
				}
				continue
			}
			if c.State.Status == container.StateRestarting {
				// The exit was recorded (and torn down) before the daemon
				// died; only the policy's restart is still due.
				pending = append(pending, c)
				continue
			}
			exited = append(exited, c)
		case container.StateExited:
			// docker starts always containers, and unless-stopped ones not
			// stopped by hand, when the daemon starts.
			p := c.HostConfig.RestartPolicy.Name
			if c.HasBeenStarted && (p == container.RestartPolicyAlways || p == container.RestartPolicyUnlessStopped && !c.ManualStop) {
				autostart = append(autostart, c)
			}
		case container.StateRemoving, container.StateDead:
			c.State.Status = container.StateDead
		}
	}
	for _, c := range exited {
		d.handleExit(c)
	}
	for _, c := range pending {
		c.restartTimer = time.AfterFunc(0, func() { d.policyRestart(c) })
	}
	for _, c := range autostart {
		go func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.State.Status != container.StateExited {
				return // started or removed meanwhile
			}
			c.ManualStop = false
			if err := d.startLocked(context.Background(), c); err != nil {
				d.log.Error("restart policy on daemon start", "id", c.ID, "err", err)
			}
		}()
	}
	// Snapshots of containers that have no record.
	_ = d.snaps.Walk(ctx, func(ctx context.Context, info snapshot.Info) error {
		if id := info.Labels["berth.container"]; id != "" && !known[id] && info.Kind == snapshot.Active {
			_ = snapshot.UnmountAll(d.rootfsDir(id))
			if err := d.snaps.Remove(ctx, info.Name); err != nil {
				d.log.Warn("sweep snapshot", "name", info.Name, "err", err)
			}
		}
		return nil
	})
	for _, dir := range []string{filepath.Join(d.cfg.ExecRoot, "containers"), filepath.Join(d.cfg.DataRoot, "containers")} {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if known[e.Name()] {
				continue
			}
			_ = snapshot.UnmountAll(filepath.Join(dir, e.Name(), "rootfs"))
			_ = os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}
	entries, _ := os.ReadDir(filepath.Join(d.cfg.ExecRoot, "netns"))
	for _, e := range entries {
		if !known[e.Name()] {
			_ = network.RemoveNamespace(filepath.Join(d.cfg.ExecRoot, "netns", e.Name()))
		}
	}
	// Runtime state of containers without a record (a crash between the
	// runtime's create and the record's write): deleting it kills what is
	// left and removes its cgroup. Dot entries are the runtime's caches.
	rt := &bruntime.Runtime{Root: d.runtimeRoot()}
	entries, _ = os.ReadDir(d.runtimeRoot())
	for _, e := range entries {
		if id := e.Name(); !known[id] && !strings.HasPrefix(id, ".") && e.IsDir() {
			if err := rt.Delete(ctx, id, true); err != nil && !errdefs.IsNotFound(err) {
				d.log.Warn("sweep runtime state", "id", id, "err", err)
			}
		}
	}
	return nil
}
