package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Resource limits proven on the kernel: each subtest starts containers with
// the real docker CLI and reads the container's cgroup files.

// cgroupV2 reports a unified (cgroup v2 only) host.
func cgroupV2() bool {
	var st unix.Statfs_t
	return unix.Statfs("/sys/fs/cgroup", &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC
}

// cgFile reads a file of container id's cgroup (daemon default parent
// /berth): v1 below the controller's hierarchy, v2 below the unified root.
func cgFile(t *testing.T, id, ctl, v1, v2 string) string {
	t.Helper()
	p := filepath.Join("/sys/fs/cgroup", ctl, "berth", id, v1)
	if cgroupV2() {
		p = filepath.Join("/sys/fs/cgroup/berth", id, v2)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("cgroup file: %v", err)
	}
	return strings.TrimSpace(string(b))
}

func cgUint(t *testing.T, s string) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(strings.Fields(s)[0], 10, 64)
	if err != nil {
		t.Fatalf("cgroup value %q: %v", s, err)
	}
	return n
}

// kv reads "key value" lines (memory.stat, cpu.stat, pids.events).
func kv(s string) map[string]uint64 {
	out := map[string]uint64{}
	for _, l := range strings.Split(s, "\n") {
		if f := strings.Fields(l); len(f) == 2 {
			out[f[0]], _ = strconv.ParseUint(f[1], 10, 64)
		}
	}
	return out
}

// memLimit is the memory limit file as bytes (v2 "max" → MaxUint64).
func memLimit(t *testing.T, id string) uint64 {
	t.Helper()
	s := cgFile(t, id, "memory", "memory.limit_in_bytes", "memory.max")
	if s == "max" {
		return math.MaxUint64
	}
	return cgUint(t, s)
}

// memSwapLimit is docker's MemorySwap as the cgroup holds it (v1 memsw;
// v2 memory.swap.max is the swap beyond memory.max).
func memSwapLimit(t *testing.T, id string) uint64 {
	t.Helper()
	if !cgroupV2() {
		return cgUint(t, cgFile(t, id, "memory", "memory.memsw.limit_in_bytes", ""))
	}
	s := cgFile(t, id, "", "", "memory.swap.max")
	if s == "max" {
		return math.MaxUint64
	}
	return cgUint(t, s) + memLimit(t, id)
}

func pidsMax(t *testing.T, id string) string {
	return cgFile(t, id, "pids", "pids.max", "pids.max")
}

// cpuQuota is the CFS quota and period in µs.
func cpuQuota(t *testing.T, id string) (string, string) {
	t.Helper()
	if cgroupV2() {
		f := strings.Fields(cgFile(t, id, "", "", "cpu.max"))
		return f[0], f[1]
	}
	return cgFile(t, id, "cpu", "cpu.cfs_quota_us", ""), cgFile(t, id, "cpu", "cpu.cfs_period_us", "")
}

// cpuUsage is the cgroup's CPU time in nanoseconds.
func cpuUsage(t *testing.T, id string) uint64 {
	t.Helper()
	if cgroupV2() {
		return kv(cgFile(t, id, "", "", "cpu.stat"))["usage_usec"] * 1000
	}
	return cgUint(t, cgFile(t, id, "cpuacct", "cpuacct.usage", ""))
}

func inspect(t *testing.T, d *daemon, format, id string) string {
	t.Helper()
	return strings.TrimSpace(d.must("docker", "inspect", "-f", format, id))
}

func TestResources(t *testing.T) {
	dockerCLI(t)
	requireRegistry(t)
	d := startDaemon(t)
	d.must("docker", "pull", bb)

	t.Run("BadInput", func(t *testing.T) { resBadInput(t, d) })
	t.Run("OOMKilled", func(t *testing.T) { resOOM(t, d) })
	t.Run("PidsLimit", func(t *testing.T) { resPids(t, d) })
	t.Run("CPUQuota", func(t *testing.T) { resCPU(t, d) })
	t.Run("Update", func(t *testing.T) { resUpdate(t, d) })
	t.Run("Stats", func(t *testing.T) { resStats(t, d) })
	t.Run("RunOptions", func(t *testing.T) { resRunOptions(t, d) })
}

// resBadInput: docker's errors for limits docker refuses, and nothing of
// the refused container is left.
func resBadInput(t *testing.T, d *daemon) {
	n := runtime.NumCPU()
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--memory", "1k"}, "Minimum memory limit allowed is 6MB"},
		{[]string{"--memory", "16m", "--memory-swap", "8m"}, "Minimum memoryswap limit should be larger than memory limit, see usage"},
		{[]string{"--memory-swap", "64m"}, "You should always set the Memory limit when using Memoryswap limit, see usage"},
		{[]string{"--memory-reservation", "1k"}, "Minimum memory reservation allowed is 6MB"},
		{[]string{"--cpus", strconv.Itoa(n + 1)}, fmt.Sprintf("Range of CPUs is from 0.01 to %[1]d.00, as there are only %[1]d CPUs available", n)},
		{[]string{"--cpuset-cpus", "1-x"}, "Invalid value 1-x for cpuset cpus: invalid format: 1-x"},
		{[]string{"--cpuset-cpus", "4096"}, "Requested CPUs are not available - requested 4096, available: "},
		{[]string{"--cpu-period", "500"}, "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"},
		{[]string{"--blkio-weight", "5"}, "Range of blkio weight is from 10 to 1000"},
	} {
		// docker run exits 125 on a daemon error, docker create 1.
		for verb, code := range map[string]int{"run": 125, "create": 1} {
			args := append(append([]string{verb, "--name", "bad"}, tc.args...), bb, "true")
			out, err := d.docker(args...)
			if exitCode(err) != code || !strings.Contains(out, "Error response from daemon: "+tc.msg) {
				t.Errorf("docker %s: exit %d, want %d and %q:\n%s", strings.Join(args, " "), exitCode(err), code, tc.msg, out)
			}
		}
	}
	if out := d.must("docker", "ps", "-aq"); strings.TrimSpace(out) != "" {
		t.Fatalf("refused containers left behind: %q", out)
	}
	if ents, _ := os.ReadDir(filepath.Join(d.root, "data", "containers")); len(ents) != 0 {
		t.Fatalf("refused containers left %d directories", len(ents))
	}
	// The name of a refused container is free.
	d.must("docker", "create", "--name", "bad", bb, "true")
	d.must("docker", "rm", "bad")
}

// resOOM: a memory hog under --memory 16m is killed by the kernel's OOM
// killer; docker sees exit 137, OOMKilled true and an oom event.
func resOOM(t *testing.T, d *daemon) {
	since := time.Now().Add(-time.Second).Unix()
	// The shell doubles a string until the limit is hit.
	out, err := d.docker("run", "--name", "hog", "-m", "16m", bb, "sh", "-c", "x=aaaaaaaaaaaaaaaa; while true; do x=$x$x; done")
	if exitCode(err) != 137 {
		t.Fatalf("memory hog: exit %d, want 137:\n%s", exitCode(err), out)
	}
	if got := inspect(t, d, "{{.State.OOMKilled}} {{.State.ExitCode}} {{.HostConfig.Memory}} {{.HostConfig.MemorySwap}}", "hog"); got != "true 137 16777216 33554432" {
		t.Fatalf("inspect after OOM: %q, want OOMKilled true, exit 137, docker's memory and memory+swap", got)
	}
	id := inspect(t, d, "{{.Id}}", "hog")
	d.must("docker", "rm", "hog")
	if ev := containerEvents(t, d, since, id, "destroy"); !slices.Contains(ev, "oom") || !slices.Contains(ev, "die") {
		t.Fatalf("events of the OOM-killed container: %q", ev)
	}

	// The OOM killer takes a child and the container lives on: docker
	// announces the oom at once, not at the exit, and only once.
	since = time.Now().Add(-time.Second).Unix()
	id = strings.TrimSpace(d.must("docker", "run", "-d", "-m", "16m", bb, "sh", "-c",
		`sh -c 'x=aaaaaaaaaaaaaaaa; while true; do x=$x$x; done'; echo child gone; while true; do sleep 1000; done`))
	waitFor(t, func() bool { out, _ := d.docker("logs", id); return strings.Contains(out, "child gone") })
	if ev := containerEvents(t, d, since, id, "oom"); ev[len(ev)-1] != "oom" {
		t.Fatalf("no oom event while running: %q", ev)
	}
	if got := inspect(t, d, "{{.State.Status}}", id); got != "running" {
		t.Fatalf("container after its child's OOM kill: %q", got)
	}
	d.must("docker", "kill", id)
	d.must("docker", "wait", id)
	if got := inspect(t, d, "{{.State.OOMKilled}} {{.State.ExitCode}}", id); got != "true 137" {
		t.Fatalf("after kill: %q, want OOMKilled true as docker (a process of the run was OOM-killed)", got)
	}
	d.must("docker", "rm", id)
	ev := containerEvents(t, d, since, id, "destroy")
	if n := strings.Count(strings.Join(ev, " ")+" ", "oom "); n != 1 {
		t.Fatalf("%d oom events, want 1: %q", n, ev)
	}

	// A container killed by docker kill under the same limit is not OOMKilled.
	d.must("docker", "run", "-d", "--name", "killed", "-m", "16m", bb, "sleep", "100")
	d.must("docker", "kill", "killed")
	d.must("docker", "wait", "killed")
	if got := inspect(t, d, "{{.State.OOMKilled}} {{.State.ExitCode}}", "killed"); got != "false 137" {
		t.Fatalf("killed container: %q, want false 137", got)
	}
	d.must("docker", "rm", "killed")
}

// containerEvents reads the API's event stream for one container from
// since until an event with action last, and returns the actions. (Read
// from the socket rather than with docker events --until: the stream
// must end by itself whatever the clock says.)
func containerEvents(t *testing.T, d *daemon, since int64, id, last string) []string {
	t.Helper()
	hc := http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", d.sock)
	}}}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	q := url.Values{"since": {strconv.FormatInt(since, 10)}, "filters": {`{"container":{"` + id + `":true}}`}}
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://berth/v1.41/events?"+q.Encode(), nil)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var actions []string
	dec := json.NewDecoder(resp.Body)
	for {
		var m struct{ Action string }
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("events after %q: %v", actions, err)
		}
		actions = append(actions, m.Action)
		if m.Action == last {
			return actions
		}
	}
}

// resPids: a fork bomb under --pids-limit 32 stops at the limit; the
// container survives, and update raises the limit live.
func resPids(t *testing.T, d *daemon) {
	// The bomb runs in a subshell that dies when fork fails; PID 1 then
	// becomes sleep without forking, so the container lives on at the limit.
	id := strings.TrimSpace(d.must("docker", "run", "-d", "--pids-limit", "32", bb, "sh", "-c",
		"(while true; do sleep 1000 & done) 2>/dev/null; exec sleep 1000"))
	defer d.docker("rm", "-f", id)
	waitFor(t, func() bool {
		return kv(cgFile(t, id, "pids", "pids.events", "pids.events"))["max"] > 0
	})
	time.Sleep(200 * time.Millisecond) // let the subshell die
	if cur := cgUint(t, cgFile(t, id, "pids", "pids.current", "pids.current")); cur > 32 || cur < 16 {
		t.Fatalf("pids.current %d under --pids-limit 32", cur)
	}
	if got := pidsMax(t, id); got != "32" {
		t.Fatalf("pids.max %q", got)
	}
	if got := inspect(t, d, "{{.State.Status}} {{.HostConfig.PidsLimit}}", id); got != "running 32" {
		t.Fatalf("after the fork bomb: %q", got)
	}
	d.must("docker", "update", "--pids-limit", "64", id)
	if got := pidsMax(t, id); got != "64" {
		t.Fatalf("pids.max after update %q", got)
	}
	if got := inspect(t, d, "{{.HostConfig.PidsLimit}}", id); got != "64" {
		t.Fatalf("inspect PidsLimit after update %q", got)
	}
	if out := d.must("docker", "exec", id, "echo", "room"); out != "room\n" {
		t.Fatalf("exec after raising the limit: %q", out)
	}
	d.must("docker", "update", "--pids-limit", "-1", id)
	if got := pidsMax(t, id); got != "max" {
		t.Fatalf("pids.max after --pids-limit -1: %q", got)
	}
}

// resCPU: a CPU burner under --cpus 0.5 is held to half a core by the CFS
// quota. The share is measured from the cgroup's own CPU time over ~2 s of
// wall time; this checks the quota, it is not a benchmark.
func resCPU(t *testing.T, d *daemon) {
	// Two burners: unlimited they could take two cores; the quota holds
	// the cgroup as a whole.
	id := strings.TrimSpace(d.must("docker", "run", "-d", "--cpus", "0.5", bb, "sh", "-c", "while :; do :; done & while :; do :; done"))
	defer d.docker("rm", "-f", id)
	if q, p := cpuQuota(t, id); q != "50000" || p != "100000" {
		t.Fatalf("cfs quota/period %s/%s, want 50000/100000", q, p)
	}
	throttled := func() uint64 {
		return kv(cgFile(t, id, "cpu", "cpu.stat", "cpu.stat"))["nr_throttled"]
	}
	time.Sleep(300 * time.Millisecond)
	u0, th0, t0 := cpuUsage(t, id), throttled(), time.Now()
	time.Sleep(2 * time.Second)
	u1, th1, t1 := cpuUsage(t, id), throttled(), time.Now()
	share := float64(u1-u0) / float64(t1.Sub(t0).Nanoseconds())
	var load float64
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Sscan(string(b), &load)
	}
	t.Logf("--cpus 0.5: %.3f of a core over %v, %d periods throttled, load %.1f on %d CPUs", share, t1.Sub(t0).Round(time.Millisecond), th1-th0, load, runtime.NumCPU())
	if share > 0.7 {
		t.Fatalf("--cpus 0.5 got %.2f of a core", share)
	}
	// The lower bound and the throttling need a CPU to spare: on a host
	// with more runnable tasks than CPUs the burner may never reach its
	// quota. The quota files above are checked either way.
	if load >= float64(runtime.NumCPU()) {
		t.Logf("host overloaded (load %.1f): share %.2f and %d throttled periods not asserted", load, share, th1-th0)
	} else {
		if share < 0.3 {
			t.Fatalf("--cpus 0.5 got only %.2f of a core", share)
		}
		if th1 <= th0 {
			t.Fatalf("the quota never throttled the burner (nr_throttled %d → %d)", th0, th1)
		}
	}
	d.must("docker", "update", "--cpus", "1", id)
	if q, _ := cpuQuota(t, id); q != "100000" {
		t.Fatalf("quota after update --cpus 1: %s", q)
	}
	if got := inspect(t, d, "{{.HostConfig.NanoCpus}}", id); got != "1000000000" {
		t.Fatalf("inspect NanoCpus %s", got)
	}
	out, err := d.docker("update", "--cpu-quota", "20000", id)
	if err == nil || !strings.Contains(out, "Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set") {
		t.Fatalf("update --cpu-quota over --cpus: %v %s", err, out)
	}
}

// resUpdate: docker update on running, stopped and restarted containers,
// through berth's in-process runtime (the test daemon's default) and the
// runc-compatible CLI runtime ("test").
func resUpdate(t *testing.T, d *daemon) {
	for _, rt := range []string{"", "test"} {
		name := "upd" + rt
		args := []string{"run", "-d", "--name", name, "-m", "16m"}
		if rt != "" {
			args = append(args, "--runtime", rt)
		}
		id := strings.TrimSpace(d.must("docker", append(args, bb, "sleep", "1000")...))
		d.must("docker", "update", "-m", "24m", name)
		if l, s := memLimit(t, id), memSwapLimit(t, id); l != 24<<20 || s != 32<<20 {
			t.Fatalf("%s: after update -m 24m: limit %d memory+swap %d", name, l, s)
		}
		if got := inspect(t, d, "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}}", name); got != "25165824 33554432" {
			t.Fatalf("%s: inspect after update: %q", name, got)
		}
		out, err := d.docker("update", "-m", "64m", name)
		if want := "Error response from daemon: Cannot update container " + id + ": Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time"; err == nil || !strings.Contains(out, want) {
			t.Fatalf("%s: update above memory+swap: %v\n%s", name, err, out)
		}
		if out, err := d.docker("update", "-m", "1k", name); err == nil || !strings.Contains(out, "Minimum memory limit allowed is 6MB") {
			t.Fatalf("%s: update -m 1k: %v\n%s", name, err, out)
		}
		d.must("docker", "update", "-m", "64m", "--memory-swap", "128m", "--memory-reservation", "10m",
			"--cpu-shares", "512", "--cpuset-cpus", "0", "--restart", "on-failure:3", name)
		check := func(when string, mem uint64) {
			t.Helper()
			if l, s := memLimit(t, id), memSwapLimit(t, id); l != mem || s != 128<<20 {
				t.Fatalf("%s %s: limit %d memory+swap %d", name, when, l, s)
			}
			if !cgroupV2() {
				if v := cgFile(t, id, "memory", "memory.soft_limit_in_bytes", ""); v != "10485760" {
					t.Fatalf("%s %s: soft limit %s", name, when, v)
				}
				if v := cgFile(t, id, "cpu", "cpu.shares", ""); v != "512" {
					t.Fatalf("%s %s: cpu.shares %s", name, when, v)
				}
			}
			if v := cgFile(t, id, "cpuset", "cpuset.cpus", "cpuset.cpus"); v != "0" {
				t.Fatalf("%s %s: cpuset.cpus %s", name, when, v)
			}
		}
		check("after update", 64<<20)
		if got := inspect(t, d, "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.MemoryReservation}} {{.HostConfig.CpuShares}} {{.HostConfig.CpusetCpus}} {{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}", name); got != "67108864 134217728 10485760 512 0 on-failure:3" {
			t.Fatalf("%s: inspect after update: %q", name, got)
		}
		// A restart generates the spec from the updated HostConfig.
		d.must("docker", "restart", "-t", "0", name)
		check("after restart", 64<<20)
		// A stopped container takes the update at its next start.
		d.must("docker", "stop", "-t", "0", name)
		d.must("docker", "update", "-m", "32m", name)
		d.must("docker", "start", name)
		check("after stopped update and start", 32<<20)
		// berth's own CLI, on a paused container (the frozen cgroup takes it).
		d.must("docker", "pause", name)
		d.must("berth", "update", "--pids-limit", "10", name)
		if got := pidsMax(t, id); got != "10" {
			t.Fatalf("%s: pids.max after berth update: %q", name, got)
		}
		d.must("docker", "unpause", name)
		d.must("docker", "rm", "-f", name)
	}
	// An update of an unknown container is docker's 404.
	if out, err := d.docker("update", "--cpus", "1", "nosuch"); err == nil || !strings.Contains(out, "No such container: nosuch") {
		t.Fatalf("update of a missing container: %v %s", err, out)
	}
}

// parseHuman reads the docker CLI's binary size ("4.5MiB", "476KiB", "0B").
func parseHuman(t *testing.T, s string) float64 {
	t.Helper()
	for i, u := range []string{"KiB", "MiB", "GiB", "TiB"} {
		if v, ok := strings.CutSuffix(s, u); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("size %q", s)
			}
			return f * math.Pow(1024, float64(i+1))
		}
	}
	f, err := strconv.ParseFloat(strings.TrimSuffix(s, "B"), 64)
	if err != nil {
		t.Fatalf("size %q", s)
	}
	return f
}

// resStats: docker stats shows memory without the page cache as docker
// computes it from the cgroup (v1 usage − total_inactive_file, v2 usage −
// inactive_file), the limit, and the pids count.
func resStats(t *testing.T, d *daemon) {
	// 8 MiB of page cache (a file written in the container) and ~4 MB of
	// anonymous memory held by the shell (a loop, so that ash does not exec
	// the last command and free it).
	id := strings.TrimSpace(d.must("docker", "run", "-d", "-m", "64m", bb, "sh", "-c",
		`dd if=/dev/zero of=/tmp/f bs=1M count=8 2>/dev/null; x=$(head -c 4000000 /dev/zero | tr "\0" a); echo ready; while true; do sleep 1000; done`))
	defer d.docker("rm", "-f", id)
	waitFor(t, func() bool { out, _ := d.docker("logs", id); return strings.Contains(out, "ready") })
	out := strings.TrimSpace(d.must("docker", "stats", "--no-stream", "--format", "{{.MemUsage}}|{{.PIDs}}", id))
	stat := kv(cgFile(t, id, "memory", "memory.stat", "memory.stat"))
	var usage, inactive uint64
	if cgroupV2() {
		usage, inactive = cgUint(t, cgFile(t, id, "", "", "memory.current")), stat["inactive_file"]
	} else {
		usage, inactive = cgUint(t, cgFile(t, id, "memory", "memory.usage_in_bytes", "")), stat["total_inactive_file"]
	}
	pids := cgFile(t, id, "pids", "pids.current", "pids.current")
	mem, rest, _ := strings.Cut(out, "|")
	shown, limit, ok := strings.Cut(mem, " / ")
	if !ok {
		t.Fatalf("docker stats: %q", out)
	}
	want := float64(usage - inactive)
	got := parseHuman(t, shown)
	t.Logf("docker stats %q; cgroup usage %d, inactive file %d → %d", out, usage, inactive, usage-inactive)
	if math.Abs(got-want) > math.Max(0.05*want, 256<<10) {
		t.Fatalf("docker stats memory %s (%.0f), cgroup usage-inactive_file %.0f", shown, got, want)
	}
	if got < 3.5e6 {
		t.Fatalf("docker stats memory %s below the ~4 MB the container holds", shown)
	}
	if limit != "64MiB" {
		t.Fatalf("docker stats limit %q, want 64MiB", limit)
	}
	if rest != pids {
		t.Fatalf("docker stats PIDs %q, cgroup pids.current %q", rest, pids)
	}
	// berth's own CLI computes the same figure.
	bout := strings.TrimSpace(d.must("berth", "stats", "--no-stream", "--format", "{{.MemUsage}}", id))
	bshown, _, _ := strings.Cut(bout, " / ")
	if b := parseHuman(t, bshown); math.Abs(b-want) > math.Max(0.05*want, 256<<10) {
		t.Fatalf("berth stats memory %q, cgroup usage-inactive_file %.0f", bout, want)
	}
}

// blockDevice finds a disk's /dev path and "major:minor".
func blockDevice() (string, string) {
	ents, _ := os.ReadDir("/sys/block")
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, "loop") || strings.HasPrefix(n, "ram") || strings.HasPrefix(n, "zram") {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/sys/block", n, "dev"))
		if _, serr := os.Stat("/dev/" + n); err == nil && serr == nil {
			return "/dev/" + n, strings.TrimSpace(string(b))
		}
	}
	return "", ""
}

// resRunOptions: run options that land in the process or the cgroup.
func resRunOptions(t *testing.T, d *daemon) {
	if out := d.must("docker", "run", "--rm", "--ulimit", "nofile=100:200", bb, "sh", "-c", "ulimit -n; ulimit -Hn"); out != "100\n200\n" {
		t.Fatalf("--ulimit nofile=100:200: %q", out)
	}
	if out := d.must("docker", "run", "--rm", "--shm-size", "8m", bb, "grep", " /dev/shm ", "/proc/mounts"); !strings.Contains(out, "size=8192k") {
		t.Fatalf("--shm-size 8m: %q", out)
	}
	args := []string{"run", "-d", "--cpu-shares", "512", "--cpuset-cpus", "0", "--blkio-weight", "300", "--cpu-period", "50000", "--cpu-quota", "25000"}
	dev, majmin := blockDevice()
	if dev != "" {
		args = append(args, "--device-write-bps", dev+":1mb", "--device-read-iops", dev+":100")
	}
	id := strings.TrimSpace(d.must("docker", append(args, bb, "sleep", "100")...))
	defer d.docker("rm", "-f", id)
	if !cgroupV2() {
		// v1 only: v2 has neither knob.
		mid := strings.TrimSpace(d.must("docker", "run", "-d", "-m", "16m", "--oom-kill-disable", "--memory-swappiness", "10", bb, "sleep", "100"))
		defer d.docker("rm", "-f", mid)
		if v := kv(cgFile(t, mid, "memory", "memory.oom_control", ""))["oom_kill_disable"]; v != 1 {
			t.Fatalf("--oom-kill-disable: oom_kill_disable %d", v)
		}
		if v := cgFile(t, mid, "memory", "memory.swappiness", ""); v != "10" {
			t.Fatalf("--memory-swappiness 10: %q", v)
		}
	}
	if v := cgFile(t, id, "cpuset", "cpuset.cpus", "cpuset.cpus"); v != "0" {
		t.Fatalf("cpuset.cpus %q", v)
	}
	if q, p := cpuQuota(t, id); q != "25000" || p != "50000" {
		t.Fatalf("cfs quota/period %s/%s", q, p)
	}
	if cgroupV2() {
		// cpu.shares 512 → cpu.weight 1+(512-2)*9999/262142 = 20.
		if v := cgFile(t, id, "", "", "cpu.weight"); v != "20" {
			t.Fatalf("cpu.weight %q", v)
		}
		if dev != "" {
			if v := cgFile(t, id, "", "", "io.max"); !strings.Contains(v, majmin+" ") || !strings.Contains(v, "wbps=1048576") || !strings.Contains(v, "riops=100") {
				t.Fatalf("io.max %q", v)
			}
		}
		return
	}
	if v := cgFile(t, id, "cpu", "cpu.shares", ""); v != "512" {
		t.Fatalf("cpu.shares %q", v)
	}
	weight := "blkio.weight"
	if _, err := os.Stat(filepath.Join("/sys/fs/cgroup/blkio/berth", id, weight)); err != nil {
		weight = "blkio.bfq.weight"
	}
	if v := cgFile(t, id, "blkio", weight, ""); !strings.Contains(v, "300") {
		t.Fatalf("%s %q", weight, v)
	}
	if dev == "" {
		t.Log("no block device found: --device-write-bps not checked")
		return
	}
	if v := cgFile(t, id, "blkio", "blkio.throttle.write_bps_device", ""); v != majmin+" 1048576" {
		t.Fatalf("blkio.throttle.write_bps_device %q, want %q", v, majmin+" 1048576")
	}
	if v := cgFile(t, id, "blkio", "blkio.throttle.read_iops_device", ""); v != majmin+" 100" {
		t.Fatalf("blkio.throttle.read_iops_device %q", v)
	}
}
