package daemon

// Healthchecks, as docker runs them (moby daemon/health.go is the model):
// the image's HEALTHCHECK merged with the create request's at create time,
// probes run as execs in the container (CMD: the argv; CMD-SHELL: the
// container's shell, default /bin/sh -c), a probe longer than Timeout is
// killed and counts as a failure (exit -1), failures inside StartPeriod do
// not count while the container is still "starting", Retries consecutive
// failures make it "unhealthy", one success makes it "healthy". The last 5
// results stay in State.Health.Log with at most 4096 bytes of output each.
//
// Cost: one timer per running container with a healthcheck. The probe runs
// in the timer's own goroutine (time.AfterFunc), which re-arms the same
// timer when the probe is done, so probes never overlap and nothing else
// waits. The checker lives only while the container runs unpaused:
//
//	start/restart/daemon restore ──▶ startHealth (status starting)
//	pause ─────────────────────────▶ stopHealth  (status unhealthy, as docker)
//	unpause ───────────────────────▶ resumeHealth (status kept)
//	exit/stop/kill/remove (teardown) ▶ stopHealth
//
// All checker state is guarded by the container's mu.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/api/backend"
	"github.com/berth-dev/berth/internal/image"
)

// docker's defaults and limits (moby daemon/health.go).
const (
	defaultProbeInterval = 30 * time.Second
	defaultProbeTimeout  = 30 * time.Second
	defaultStartInterval = 5 * time.Second
	defaultProbeRetries  = 3
	maxHealthLog         = 5
	maxHealthOutput      = 4096
	minHealthDuration    = time.Millisecond
)

// healthChecker is one container's running healthcheck.
type healthChecker struct {
	timer   *time.Timer
	cancel  context.CancelFunc // the probe in flight; nil when idle
	stopped bool
}

// mergeHealthcheck is docker's merge of the request's healthcheck over the
// image's (moby daemon/config merge): no request healthcheck takes the
// image's whole; otherwise each unset field takes the image's value.
func (d *Daemon) mergeHealthcheck(img *image.Image, req *container.HealthConfig) *container.HealthConfig {
	return mergeHealth(req, d.imageHealthcheck(img))
}

// imageHealthcheck reads the HEALTHCHECK of a docker image config
// (config.Healthcheck); OCI's ImageConfig has no such field, so it comes
// from the raw config blob.
func (d *Daemon) imageHealthcheck(img *image.Image) *container.HealthConfig {
	if img == nil || d.images == nil {
		return nil
	}
	b, err := d.images.Content().ReadAll(img.ID)
	if err != nil {
		return nil
	}
	var cfg struct {
		Config struct {
			Healthcheck *container.HealthConfig `json:"Healthcheck"`
		} `json:"config"`
	}
	if json.Unmarshal(b, &cfg) != nil {
		return nil
	}
	return cfg.Config.Healthcheck
}

// validateHealthcheck rejects what docker rejects, with docker's messages.
func validateHealthcheck(h *container.HealthConfig) error {
	if h == nil {
		return nil
	}
	for _, f := range []struct {
		name string
		v    time.Duration
	}{{"Interval", h.Interval}, {"Timeout", h.Timeout}, {"StartPeriod", h.StartPeriod}, {"StartInterval", h.StartInterval}} {
		if f.v != 0 && f.v < minHealthDuration {
			return errMsg(errInvalid, "%s in Healthcheck cannot be less than %s", f.name, minHealthDuration)
		}
	}
	if h.Retries < 0 {
		return errMsg(errInvalid, "Retries in Healthcheck cannot be negative")
	}
	if len(h.Test) > 0 {
		switch h.Test[0] {
		case "NONE", "CMD", "CMD-SHELL":
		default:
			return errMsg(errInvalid, "unknown healthcheck type %q (want NONE, CMD or CMD-SHELL)", h.Test[0])
		}
	}
	return nil
}

// probeCommand is the argv a probe execs, nil without a healthcheck.
func probeCommand(cfg *container.Config) []string {
	h := cfg.Healthcheck
	if h == nil || len(h.Test) < 2 {
		return nil
	}
	switch h.Test[0] {
	case "CMD":
		return append([]string{}, h.Test[1:]...)
	case "CMD-SHELL":
		shell := cfg.Shell
		if len(shell) == 0 {
			shell = []string{"/bin/sh", "-c"}
		}
		return append(append([]string{}, shell...), strings.Join(h.Test[1:], " "))
	}
	return nil
}

func orDefault(v, def time.Duration) time.Duration {
	if v == 0 {
		return def
	}
	return v
}

// startHealth (re)starts c's checker from "starting"; the log is kept
// across runs, as docker does. c.mu is held.
func (d *Daemon) startHealth(c *Container) {
	d.stopHealth(c)
	if probeCommand(c.Config) == nil {
		return
	}
	if c.State.Health == nil {
		c.State.Health = &container.Health{}
	}
	c.State.Health.Status = container.Starting
	c.State.Health.FailingStreak = 0
	d.resumeHealth(c)
}

// resumeHealth starts c's checker keeping its status (unpause). c.mu is held.
func (d *Daemon) resumeHealth(c *Container) {
	if c.health != nil || c.State.Health == nil || probeCommand(c.Config) == nil {
		return
	}
	h := &healthChecker{}
	c.health = h
	h.timer = time.AfterFunc(healthInterval(c), func() { d.probe(c, h) })
}

// stopHealth stops c's checker and kills a probe in flight. A container
// whose checker stops is "unhealthy", as with docker. c.mu is held.
func (d *Daemon) stopHealth(c *Container) {
	h := c.health
	if h == nil {
		return
	}
	c.health = nil
	h.stopped = true
	h.timer.Stop()
	if h.cancel != nil {
		h.cancel()
	}
	if c.State.Health != nil {
		c.State.Health.Status = container.Unhealthy
	}
}

// healthInterval is the wait before the next probe: StartInterval while
// the container is starting within StartPeriod, else Interval.
func healthInterval(c *Container) time.Duration {
	hc := c.Config.Healthcheck
	interval := orDefault(hc.Interval, defaultProbeInterval)
	if time.Since(c.State.StartedAt) >= hc.StartPeriod {
		return interval
	}
	if c.State.Health != nil && c.State.Health.Status == container.Starting {
		return orDefault(hc.StartInterval, defaultStartInterval)
	}
	return interval
}

// probe runs one probe and records it; it runs in h.timer's goroutine.
func (d *Daemon) probe(c *Container, h *healthChecker) {
	c.mu.Lock()
	if h.stopped || d.closeCtx.Err() != nil || c.State.Status != container.StateRunning {
		c.mu.Unlock()
		return
	}
	cmd := probeCommand(c.Config)
	timeout := orDefault(c.Config.Healthcheck.Timeout, defaultProbeTimeout)
	ctx, cancel := context.WithTimeout(d.closeCtx, timeout)
	h.cancel = cancel
	execID := newID()
	action := strings.Join(cmd, " ")
	d.containerEvent(c, events.Action("exec_create: "+action), map[string]string{"execID": execID})
	d.containerEvent(c, events.Action("exec_start: "+action), map[string]string{"execID": execID})
	c.mu.Unlock()

	res := d.runProbe(ctx, c, cmd, execID)
	timedOut := errors.Is(ctx.Err(), context.DeadlineExceeded)
	cancel()
	if timedOut {
		res.ExitCode = -1
		res.Output = fmt.Sprintf("Health check exceeded timeout (%v)", timeout)
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	h.cancel = nil
	d.containerEvent(c, events.ActionExecDie, map[string]string{"execID": execID, "exitCode": strconv.Itoa(res.ExitCode)})
	if h.stopped || d.closeCtx.Err() != nil {
		return
	}
	d.recordHealth(c, res)
	h.timer.Reset(healthInterval(c))
}

// recordHealth applies one result (docker's handleProbeResult). c.mu is held.
func (d *Daemon) recordHealth(c *Container, res *container.HealthcheckResult) {
	hs := c.State.Health
	if hs == nil {
		return
	}
	old := hs.Status
	if len(hs.Log) >= maxHealthLog {
		hs.Log = append(append([]*container.HealthcheckResult{}, hs.Log[len(hs.Log)+1-maxHealthLog:]...), res)
	} else {
		hs.Log = append(hs.Log, res)
	}
	if res.ExitCode == 0 {
		hs.FailingStreak = 0
		hs.Status = container.Healthy
	} else {
		hc := c.Config.Healthcheck
		// Failures inside the start period do not count until the first
		// success.
		if hs.Status != container.Starting || res.Start.Sub(c.State.StartedAt) >= hc.StartPeriod {
			hs.FailingStreak++
			retries := hc.Retries
			if retries <= 0 {
				retries = defaultProbeRetries
			}
			if hs.FailingStreak >= retries {
				hs.Status = container.Unhealthy
			}
		}
	}
	if hs.Status != old {
		// Persist status changes only: a probe every second must not cost
		// a metadata write each.
		if err := d.saveRecord(c); err != nil {
			d.log.Warn("save health status", "id", c.ID, "err", err)
		}
		d.containerEvent(c, events.Action(string(events.ActionHealthStatus)+": "+string(hs.Status)), nil)
	}
}

// runProbe execs cmd in c through the runtime, as docker exec does, with
// stdout and stderr captured together (at most 4096 bytes). When ctx ends
// the probe's process is killed with SIGKILL.
func (d *Daemon) runProbe(ctx context.Context, c *Container, cmd []string, execID string) *container.HealthcheckResult {
	res := &container.HealthcheckResult{Start: time.Now()}
	fail := func(err error) *container.HealthcheckResult {
		res.End = time.Now()
		res.ExitCode = -1
		res.Output = err.Error()
		return res
	}
	proc, err := d.execProcess(&execProc{c: c, cfg: container.ExecCreateRequest{Cmd: cmd}})
	if err != nil {
		return fail(err)
	}
	rt, rtArgs, err := d.runtimeFor(c.Runtime)
	if err != nil {
		return fail(err)
	}
	dir := d.stateDir(c.ID)
	// Per-probe names: a probe killed by a stop may still be winding down
	// when the next run's first probe starts.
	procFile, pidFile := filepath.Join(dir, "health-"+execID[:12]+".json"), filepath.Join(dir, "health-"+execID[:12]+".pid")
	pb, _ := json.Marshal(proc)
	if err := os.WriteFile(procFile, pb, 0o600); err != nil {
		return fail(err)
	}
	_ = os.Remove(pidFile)
	defer os.Remove(pidFile)
	defer os.Remove(procFile)
	args := append(append([]string{}, rtArgs...), "--root", d.runtimeRoot(), "exec", "--process", procFile, "--pid-file", pidFile, c.ID)
	out := &limitedBuffer{}
	x := exec.CommandContext(ctx, rt, args...)
	x.Stdout, x.Stderr = out, out
	// The runtime's exec only waits for the probe; killing the runtime would
	// leave the probe running in the container, so kill the probe itself.
	x.Cancel = func() error {
		if b, err := os.ReadFile(pidFile); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
				_ = unix.Kill(pid, syscall.SIGKILL)
				return nil
			}
		}
		return x.Process.Kill()
	}
	x.WaitDelay = 5 * time.Second
	err = x.Run()
	res.End = time.Now()
	res.Output = out.String()
	if x.ProcessState == nil {
		return fail(err)
	}
	res.ExitCode = x.ProcessState.ExitCode()
	if res.ExitCode < 0 {
		res.ExitCode = -1
	}
	return res
}

// limitedBuffer keeps the first 4096 bytes and marks a truncation with
// "...", as docker's probe output does.
type limitedBuffer struct {
	buf       []byte
	truncated bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	keep := min(maxHealthOutput-len(b.buf), len(p))
	if keep > 0 {
		b.buf = append(b.buf, p[:keep]...)
	}
	if keep < len(p) {
		b.truncated = true
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string {
	if b.truncated {
		return string(b.buf) + "..."
	}
	return string(b.buf)
}

// healthView is a copy of c's health for inspect (encoded after c.mu is
// released). c.mu is held.
func healthView(c *Container) *container.Health {
	hs := c.State.Health
	if hs == nil {
		return nil
	}
	out := &container.Health{Status: hs.Status, FailingStreak: hs.FailingStreak, Log: make([]*container.HealthcheckResult, 0, len(hs.Log))}
	for _, r := range hs.Log {
		cp := *r
		out.Log = append(out.Log, &cp)
	}
	return out
}

// healthSuffix is the health part of ps's STATUS: " (healthy)",
// " (health: starting)", " (unhealthy)".
func healthSuffix(hs *container.Health) string {
	if hs == nil {
		return ""
	}
	if hs.Status == container.Starting {
		return " (health: starting)"
	}
	return " (" + string(hs.Status) + ")"
}

// healthOf is the value the ps health filter matches.
func healthOf(c *Container) string {
	if c.State.Health == nil {
		return string(container.NoHealthcheck)
	}
	return string(c.State.Health.Status)
}

// validateHealthFilter checks ps's health= values, with docker's message.
func validateHealthFilter(f backend.Filters) error {
	for _, v := range f.Get("health") {
		if container.ValidateHealthStatus(container.HealthStatus(v)) != nil {
			return errMsg(errInvalid, "Unrecognised filter value for health: %s", v)
		}
	}
	return nil
}
