package e2e

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

// imageHealth is config.Healthcheck as `docker image inspect` shows it.
type imageHealth struct {
	Test                                          []string
	Interval, Timeout, StartPeriod, StartInterval time.Duration
	Retries                                       int
}

func (d *daemon) imageHealthcheck(t *testing.T, ref string) *imageHealth {
	t.Helper()
	out := strings.TrimSpace(d.must("docker", "image", "inspect", "-f", "{{json .Config.Healthcheck}}", ref))
	if out == "null" {
		return nil
	}
	var h imageHealth
	if err := json.Unmarshal([]byte(out), &h); err != nil {
		t.Fatalf("Config.Healthcheck of %s %q: %v", ref, out, err)
	}
	return &h
}

// TestCommitHealthcheck: docker commit carries the container's healthcheck
// into the image (config.Healthcheck), --change HEALTHCHECK sets or
// disables it with the container's values filling unset fields, and a
// container of the committed image runs the probe.
func TestCommitHealthcheck(t *testing.T) {
	dockerCLI(t)
	requireRegistry(t)
	d := startOwnBridge(t)
	d.must("docker", "pull", bb)

	// A container created with --health-* flags: commit keeps its healthcheck.
	d.must("docker", "run", "-d", "--name", "withhc", "--health-cmd", "echo from-flags", "--health-interval", "1s",
		"--health-timeout", "4s", "--health-retries", "2", bb, "sleep", "300")
	d.must("docker", "commit", "withhc", "hc/kept:1")
	want := &imageHealth{Test: []string{"CMD-SHELL", "echo from-flags"}, Interval: time.Second, Timeout: 4 * time.Second, Retries: 2}
	if got := d.imageHealthcheck(t, "hc/kept:1"); !reflect.DeepEqual(got, want) {
		t.Fatalf("committed healthcheck %+v, want %+v", got, want)
	}

	// A container without one: commit --change sets it; JSON (exec) form.
	d.must("docker", "run", "-d", "--name", "plain", bb, "sleep", "300")
	if got := d.imageHealthcheck(t, bb); got != nil {
		t.Fatalf("busybox has a healthcheck: %+v", got)
	}
	d.must("docker", "commit", "plain", "hc/none:1")
	if got := d.imageHealthcheck(t, "hc/none:1"); got != nil {
		t.Fatalf("commit without healthcheck wrote %+v", got)
	}
	d.must("docker", "commit", "--change", `HEALTHCHECK --interval=1s --start-period=30s --retries=3 CMD ["echo", "probe-ok"]`,
		"--change", "CMD sleep 300", "plain", "hc/set:1")
	want = &imageHealth{Test: []string{"CMD", "echo", "probe-ok"}, Interval: time.Second, StartPeriod: 30 * time.Second, Retries: 3}
	if got := d.imageHealthcheck(t, "hc/set:1"); !reflect.DeepEqual(got, want) {
		t.Fatalf("--change healthcheck %+v, want %+v", got, want)
	}
	// Other changes still apply next to HEALTHCHECK.
	if out := strings.TrimSpace(d.must("docker", "image", "inspect", "-f", "{{json .Config.Cmd}}", "hc/set:1")); out != `["/bin/sh","-c","sleep 300"]` {
		t.Fatalf("CMD change beside HEALTHCHECK: %s", out)
	}

	// A container of the committed image runs the probe: healthy, with its output.
	d.must("docker", "run", "-d", "--name", "fromset", "hc/set:1")
	waitLong(t, "fromset healthy", func() bool { return d.health("fromset") == "healthy" })
	h := d.healthLog(t, "fromset")
	if len(h.Log) == 0 || h.Log[0].ExitCode != 0 || h.Log[0].Output != "probe-ok\n" {
		t.Fatalf("health log of the committed image's container: %+v", h)
	}
	if st := d.psStatus("fromset"); !strings.Contains(st, "(healthy)") {
		t.Fatalf("ps status %q", st)
	}

	// --change over a container's healthcheck: the change's fields win,
	// unset ones come from the container's (docker's merge); shell form.
	d.must("docker", "commit", "--change", "HEALTHCHECK --timeout=3s CMD exit 1", "withhc", "hc/merged:1")
	want = &imageHealth{Test: []string{"CMD-SHELL", "exit 1"}, Interval: time.Second, Timeout: 3 * time.Second, Retries: 2}
	if got := d.imageHealthcheck(t, "hc/merged:1"); !reflect.DeepEqual(got, want) {
		t.Fatalf("merged healthcheck %+v, want %+v", got, want)
	}
	d.must("docker", "run", "-d", "--name", "frommerged", "hc/merged:1", "sleep", "300")
	waitLong(t, "frommerged unhealthy", func() bool { return d.health("frommerged") == "unhealthy" })

	// HEALTHCHECK NONE disables the inherited one: no State.Health.
	d.must("docker", "commit", "--change", "HEALTHCHECK NONE", "withhc", "hc/disabled:1")
	if got := d.imageHealthcheck(t, "hc/disabled:1"); got == nil || !reflect.DeepEqual(got.Test, []string{"NONE"}) {
		t.Fatalf("HEALTHCHECK NONE committed as %+v", got)
	}
	d.must("docker", "run", "-d", "--name", "fromdisabled", "hc/disabled:1", "sleep", "300")
	time.Sleep(2 * time.Second) // two probe intervals of the disabled check
	if st := d.health("fromdisabled"); st != "none" {
		t.Fatalf("container of a HEALTHCHECK NONE image has health %q", st)
	}

	// Bad HEALTHCHECK changes: docker's messages, no image made.
	for change, msg := range map[string]string{
		"HEALTHCHECK --retries=-1 CMD true":   "--retries cannot be negative (-1)",
		"HEALTHCHECK CMD":                     "Missing command after HEALTHCHECK CMD",
		"HEALTHCHECK SHELL true":              `Unknown type "SHELL" in HEALTHCHECK (try CMD)`,
		"HEALTHCHECK --interval=1us CMD true": `cannot be less than 1ms`,
	} {
		out, err := d.docker("commit", "--change", change, "plain", "hc/bad:1")
		if exitCode(err) != 1 || !strings.Contains(out, "Error response from daemon: ") || !strings.Contains(out, msg) {
			t.Errorf("commit --change %q: exit %d, output %q, want %q", change, exitCode(err), out, msg)
		}
	}
	if out, err := d.docker("image", "inspect", "hc/bad:1"); err == nil {
		t.Fatalf("a refused commit made an image: %s", out)
	}
}
