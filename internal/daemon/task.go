package daemon

import (
	"context"
	"path/filepath"

	"github.com/berth-dev/berth/internal/monitor"
	bruntime "github.com/berth-dev/berth/internal/runtime"
)

// ownRuntime tells whether the runtime named name is berth's own, which the
// daemon drives in-process rather than through its command line.
func (d *Daemon) ownRuntime(name string) bool {
	_, custom := d.cfg.Runtimes[name]
	return !custom && (name == "berth" || name == "berth-runtime")
}

// createTask starts c's monitor and creates the container under it; the
// container's init then waits for start. config is the bundle's
// config.json, just written.
//
// With berth's own runtime the daemon runs create in-process and the
// monitor (in fork mode) only forks the init, so that it is the monitor's
// child: no runtime process per container, which costs ~15 ms to start
// here, about a third of create. The monitor starts while the daemon
// prepares the cgroup and state. Any other runtime is run by the monitor
// as `RUNTIME create`.
func (d *Daemon) createTask(ctx context.Context, c *Container, mc monitor.Config, config []byte) (*monitor.Process, error) {
	own, err := d.runtimeOf(c)
	if err != nil {
		return nil, err
	}
	rt, ok := own.(*bruntime.Runtime)
	if !ok {
		return monitor.Start(ctx, mc)
	}
	mc.Fork = true
	proc, err := monitor.Start(ctx, mc)
	if err != nil {
		return nil, err
	}
	rt.Exe = mc.Runtime
	opts := &bruntime.CreateOpts{
		Fork:    proc.Fork,
		PidFile: filepath.Join(mc.StateDir, "pid"),
		Config:  config,
	}
	if mc.Terminal {
		opts.OnConsole = proc.SendConsole
	}
	pid, err := rt.CreateInit(ctx, c.ID, mc.Bundle, opts)
	if err != nil {
		proc.Abort(err.Error())
		return nil, err
	}
	if err := proc.Created(pid); err != nil {
		_ = rt.Delete(ctx, c.ID, true)
		proc.Abort(err.Error())
		return nil, err
	}
	return proc, nil
}
