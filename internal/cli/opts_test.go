package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/spf13/pflag"
)

// parseArgs runs the run/create flag parser on a command line.
func parseArgs(t *testing.T, args ...string) (*containerConfig, error) {
	t.Helper()
	var o containerOptions
	fl := pflag.NewFlagSet("run", pflag.ContinueOnError)
	addContainerFlags(fl, &o)
	if err := fl.Parse(args); err != nil {
		return nil, err
	}
	rest := fl.Args()
	if len(rest) == 0 {
		t.Fatal("no image")
	}
	o.image, o.args = rest[0], rest[1:]
	return parseContainer(fl, &o)
}

func mustParse(t *testing.T, args ...string) *containerConfig {
	t.Helper()
	cfg, err := parseArgs(t, args...)
	if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return cfg
}

func TestParseMapping(t *testing.T) {
	t.Setenv("FROM_HOST", "hostval")
	dir := t.TempDir()
	envFile := filepath.Join(dir, "env")
	_ = os.WriteFile(envFile, []byte("# comment\n\nFILE_A=1\n  FILE_B=two words\nFROM_HOST\nUNSET_VAR\n"), 0o644)
	labelFile := filepath.Join(dir, "labels")
	_ = os.WriteFile(labelFile, []byte("lf=1\n"), 0o644)

	tests := []struct {
		name  string
		args  []string
		check func(t *testing.T, c *containerConfig)
	}{
		{"defaults", []string{"busybox"}, func(t *testing.T, c *containerConfig) {
			if !c.Config.AttachStdout || !c.Config.AttachStderr || c.Config.AttachStdin || c.Config.OpenStdin {
				t.Errorf("attach flags %+v", c.Config)
			}
			if c.HostConfig.NetworkMode != "default" || *c.HostConfig.MemorySwappiness != -1 || *c.HostConfig.PidsLimit != 0 || c.HostConfig.Init != nil {
				t.Errorf("hostconfig defaults %+v", c.HostConfig)
			}
			if _, ok := c.NetworkingConfig.EndpointsConfig["default"]; !ok {
				t.Errorf("endpoints %v", c.NetworkingConfig.EndpointsConfig)
			}
		}},
		{"interactive tty", []string{"-it", "busybox", "sh"}, func(t *testing.T, c *containerConfig) {
			if !c.Config.Tty || !c.Config.OpenStdin || !c.Config.AttachStdin || !c.Config.StdinOnce {
				t.Errorf("-it: %+v", c.Config)
			}
			if !reflect.DeepEqual(c.Config.Cmd, []string{"sh"}) {
				t.Errorf("cmd %v", c.Config.Cmd)
			}
		}},
		{"env and files", []string{"-e", "A=1,2", "-e", "FROM_HOST", "-e", "NOT_SET_ANYWHERE", "--env-file", envFile, "busybox"}, func(t *testing.T, c *containerConfig) {
			want := []string{"FILE_A=1", "FILE_B=two words", "FROM_HOST=hostval", "A=1,2", "FROM_HOST=hostval", "NOT_SET_ANYWHERE"}
			if !reflect.DeepEqual(c.Config.Env, want) {
				t.Errorf("env %q, want %q", c.Config.Env, want)
			}
		}},
		{"labels", []string{"-l", "a=b", "--label", "c", "--label-file", labelFile, "busybox"}, func(t *testing.T, c *containerConfig) {
			if !reflect.DeepEqual(c.Config.Labels, map[string]string{"a": "b", "c": "", "lf": "1"}) {
				t.Errorf("labels %v", c.Config.Labels)
			}
		}},
		{"ports", []string{"-p", "8080:80", "-p", "127.0.0.1:53:53/udp", "-p", "9000", "-p", "7000-7001:8000-8001", "--expose", "3000-3001", "-P", "busybox"}, func(t *testing.T, c *containerConfig) {
			pb := c.HostConfig.PortBindings
			if got := pb[network.MustParsePort("80/tcp")]; len(got) != 1 || got[0].HostPort != "8080" || got[0].HostIP.IsValid() {
				t.Errorf("80/tcp %v", got)
			}
			if got := pb[network.MustParsePort("53/udp")]; len(got) != 1 || got[0].HostIP.String() != "127.0.0.1" || got[0].HostPort != "53" {
				t.Errorf("53/udp %v", got)
			}
			if got := pb[network.MustParsePort("9000/tcp")]; len(got) != 1 || got[0].HostPort != "" {
				t.Errorf("9000 %v", got)
			}
			if got := pb[network.MustParsePort("8001/tcp")]; len(got) != 1 || got[0].HostPort != "7001" {
				t.Errorf("range %v", got)
			}
			for _, p := range []string{"80/tcp", "53/udp", "9000/tcp", "8000/tcp", "8001/tcp", "3000/tcp", "3001/tcp"} {
				if _, ok := c.Config.ExposedPorts[network.MustParsePort(p)]; !ok {
					t.Errorf("%s not exposed", p)
				}
			}
			if !c.HostConfig.PublishAllPorts {
				t.Error("-P")
			}
		}},
		{"volumes", []string{"-v", "/data", "-v", "/host:/ctr:ro", "-v", "named:/vol", "-v", "./rel:/rel", "--tmpfs", "/run:size=1m", "--volumes-from", "other:ro",
			"--mount", "type=bind,source=/src,target=/dst,readonly,bind-propagation=rslave", "--mount", "type=tmpfs,dst=/t,tmpfs-size=64m,tmpfs-mode=1770", "busybox"}, func(t *testing.T, c *containerConfig) {
			if _, ok := c.Config.Volumes["/data"]; !ok || len(c.Config.Volumes) != 1 {
				t.Errorf("volumes %v", c.Config.Volumes)
			}
			wd, _ := os.Getwd()
			want := []string{"/host:/ctr:ro", "named:/vol", filepath.Join(wd, "rel") + ":/rel"}
			if !reflect.DeepEqual(c.HostConfig.Binds, want) {
				t.Errorf("binds %q want %q", c.HostConfig.Binds, want)
			}
			if c.HostConfig.Tmpfs["/run"] != "size=1m" || !reflect.DeepEqual(c.HostConfig.VolumesFrom, []string{"other:ro"}) {
				t.Errorf("tmpfs %v volumes-from %v", c.HostConfig.Tmpfs, c.HostConfig.VolumesFrom)
			}
			m := c.HostConfig.Mounts
			if len(m) != 2 || m[0].Type != "bind" || m[0].Source != "/src" || m[0].Target != "/dst" || !m[0].ReadOnly || m[0].BindOptions.Propagation != "rslave" {
				t.Errorf("bind mount %+v", m)
			}
			if m[1].Type != "tmpfs" || m[1].TmpfsOptions.SizeBytes != 64<<20 || m[1].TmpfsOptions.Mode != 0o1770 {
				t.Errorf("tmpfs mount %+v", m[1])
			}
		}},
		{"resources", []string{"-m", "512m", "--memory-swap", "-1", "--memory-reservation", "256m", "--cpus", "1.5", "-c", "512", "--cpuset-cpus", "0-1",
			"--pids-limit", "100", "--ulimit", "nofile=1024:2048", "--blkio-weight", "300", "--device-read-bps", "/dev/sda:1mb", "--device-write-iops", "/dev/sda:100",
			"--shm-size", "64m", "--oom-kill-disable", "--memory-swappiness", "10", "busybox"}, func(t *testing.T, c *containerConfig) {
			r := c.HostConfig.Resources
			if r.Memory != 512<<20 || r.MemorySwap != -1 || r.MemoryReservation != 256<<20 || r.NanoCPUs != 1500000000 || r.CPUShares != 512 ||
				r.CpusetCpus != "0-1" || *r.PidsLimit != 100 || r.BlkioWeight != 300 || !*r.OomKillDisable || *r.MemorySwappiness != 10 {
				t.Errorf("resources %+v", r)
			}
			if len(r.Ulimits) != 1 || r.Ulimits[0].Name != "nofile" || r.Ulimits[0].Soft != 1024 || r.Ulimits[0].Hard != 2048 {
				t.Errorf("ulimits %+v", r.Ulimits)
			}
			if len(r.BlkioDeviceReadBps) != 1 || r.BlkioDeviceReadBps[0].Rate != 1<<20 || r.BlkioDeviceWriteIOps[0].Rate != 100 {
				t.Errorf("blkio %+v %+v", r.BlkioDeviceReadBps, r.BlkioDeviceWriteIOps)
			}
			if c.HostConfig.ShmSize != 64<<20 {
				t.Errorf("shm %d", c.HostConfig.ShmSize)
			}
		}},
		{"security", []string{"--privileged", "--cap-add", "NET_ADMIN", "--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--security-opt", "label:disable",
			"--security-opt", "systempaths=unconfined", "--device", "/dev/fuse", "--device", "/dev/sda:/dev/xvda:r", "--group-add", "audio", "--sysctl", "net.ipv4.ip_forward=1",
			"--read-only", "--userns", "host", "--pid", "host", "--ipc", "shareable", "--uts", "host", "--cgroupns", "private", "busybox"}, func(t *testing.T, c *containerConfig) {
			h := c.HostConfig
			if !h.Privileged || !reflect.DeepEqual(h.CapAdd, []string{"NET_ADMIN"}) || !reflect.DeepEqual(h.CapDrop, []string{"ALL"}) || !h.ReadonlyRootfs {
				t.Errorf("caps %+v", h)
			}
			if !reflect.DeepEqual(h.SecurityOpt, []string{"no-new-privileges", "label=disable"}) || h.MaskedPaths == nil || len(h.MaskedPaths) != 0 || h.ReadonlyPaths == nil {
				t.Errorf("security opts %q masked %v", h.SecurityOpt, h.MaskedPaths)
			}
			want := []container.DeviceMapping{{PathOnHost: "/dev/fuse", PathInContainer: "/dev/fuse", CgroupPermissions: "rwm"}, {PathOnHost: "/dev/sda", PathInContainer: "/dev/xvda", CgroupPermissions: "r"}}
			if !reflect.DeepEqual(h.Devices, want) {
				t.Errorf("devices %+v", h.Devices)
			}
			if h.Sysctls["net.ipv4.ip_forward"] != "1" || h.UsernsMode != "host" || h.PidMode != "host" || h.IpcMode != "shareable" || h.UTSMode != "host" || h.CgroupnsMode != "private" {
				t.Errorf("namespaces %+v", h)
			}
		}},
		{"lifecycle", []string{"--restart", "on-failure:5", "--init", "--stop-signal", "SIGINT", "--stop-timeout", "20", "--entrypoint", "/bin/sh", "-w", "/tmp", "-u", "1000:1000",
			"-h", "box", "--domainname", "example.com", "--health-cmd", "true", "--health-interval", "5s", "--health-retries", "3", "--log-driver", "json-file", "--log-opt", "max-size=1m",
			"--rm=false", "--cidfile", "/tmp/cid", "--runtime", "runc", "busybox", "-c", "echo"}, func(t *testing.T, c *containerConfig) {
			if c.HostConfig.RestartPolicy.Name != "on-failure" || c.HostConfig.RestartPolicy.MaximumRetryCount != 5 || c.HostConfig.Init == nil || !*c.HostConfig.Init {
				t.Errorf("restart/init %+v", c.HostConfig)
			}
			cf := c.Config
			if cf.StopSignal != "SIGINT" || cf.StopTimeout == nil || *cf.StopTimeout != 20 || !reflect.DeepEqual(cf.Entrypoint, []string{"/bin/sh"}) ||
				cf.WorkingDir != "/tmp" || cf.User != "1000:1000" || cf.Hostname != "box" || cf.Domainname != "example.com" || !reflect.DeepEqual(cf.Cmd, []string{"-c", "echo"}) {
				t.Errorf("config %+v", cf)
			}
			if cf.Healthcheck == nil || !reflect.DeepEqual(cf.Healthcheck.Test, []string{"CMD-SHELL", "true"}) || cf.Healthcheck.Interval != 5*time.Second || cf.Healthcheck.Retries != 3 {
				t.Errorf("health %+v", cf.Healthcheck)
			}
			if c.HostConfig.LogConfig.Type != "json-file" || c.HostConfig.LogConfig.Config["max-size"] != "1m" || c.HostConfig.ContainerIDFile != "/tmp/cid" || c.HostConfig.Runtime != "runc" {
				t.Errorf("log %+v", c.HostConfig.LogConfig)
			}
		}},
		{"entrypoint reset", []string{"--entrypoint=", "busybox"}, func(t *testing.T, c *containerConfig) {
			if !reflect.DeepEqual(c.Config.Entrypoint, []string{""}) {
				t.Errorf("entrypoint %q", c.Config.Entrypoint)
			}
		}},
		{"network", []string{"--network", "mynet", "--network-alias", "web", "--ip", "10.1.0.5", "--dns", "8.8.8.8", "--dns-search", "example.com", "--dns-option", "ndots:2",
			"--add-host", "db:10.0.0.2", "--add-host", "gw=host-gateway", "--link", "other:o", "--mac-address", "02:42:ac:11:00:02", "busybox"}, func(t *testing.T, c *containerConfig) {
			if c.HostConfig.NetworkMode != "mynet" {
				t.Errorf("network mode %q", c.HostConfig.NetworkMode)
			}
			ep := c.NetworkingConfig.EndpointsConfig["mynet"]
			if ep == nil || !reflect.DeepEqual(ep.Aliases, []string{"web"}) || ep.IPAMConfig == nil || ep.IPAMConfig.IPv4Address.String() != "10.1.0.5" ||
				!reflect.DeepEqual(ep.Links, []string{"other:o"}) || ep.MacAddress.String() != "02:42:ac:11:00:02" {
				t.Errorf("endpoint %+v", ep)
			}
			if len(c.HostConfig.DNS) != 1 || c.HostConfig.DNS[0].String() != "8.8.8.8" || !reflect.DeepEqual(c.HostConfig.ExtraHosts, []string{"db:10.0.0.2", "gw:host-gateway"}) {
				t.Errorf("dns/hosts %+v %+v", c.HostConfig.DNS, c.HostConfig.ExtraHosts)
			}
		}},
		{"network none", []string{"--network", "none", "busybox"}, func(t *testing.T, c *containerConfig) {
			if c.HostConfig.NetworkMode != "none" || len(c.NetworkingConfig.EndpointsConfig) != 0 {
				t.Errorf("none: %q %v", c.HostConfig.NetworkMode, c.NetworkingConfig.EndpointsConfig)
			}
		}},
		{"attach stdin only", []string{"-a", "stdin", "-a", "STDOUT", "busybox"}, func(t *testing.T, c *containerConfig) {
			if !c.Config.AttachStdin || !c.Config.AttachStdout || c.Config.AttachStderr {
				t.Errorf("attach %+v", c.Config)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.check(t, mustParse(t, tc.args...)) })
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--restart", "always", "--rm", "busybox"}, "conflicting options: cannot specify both --restart and --rm"},
		{[]string{"--memory-swappiness", "101", "busybox"}, "invalid value: 101. Valid memory swappiness range is 0-100"},
		{[]string{"--no-healthcheck", "--health-cmd", "x", "busybox"}, "--no-healthcheck conflicts with --health-* options"},
		{[]string{"-p", "80:80:80:80", "busybox"}, "invalid port format"},
		{[]string{"-m", "lots", "busybox"}, "invalid"},
		{[]string{"--restart", ":3", "busybox"}, "no policy provided before colon"},
		{[]string{"--security-opt", "seccomp=/nonexistent/profile.json", "busybox"}, "opening seccomp profile (/nonexistent/profile.json) failed"},
		{[]string{"--mac-address", "zz", "busybox"}, "zz is not a valid mac address"},
		{[]string{"--pid", "bogus", "busybox"}, "--pid: invalid PID mode"},
		{[]string{"--network-alias", "x", "busybox"}, "network-scoped aliases are only supported for user-defined networks"},
		{[]string{"-a", "stdfoo", "busybox"}, "valid streams are STDIN, STDOUT and STDERR"},
		{[]string{"--dns", "not-an-ip", "busybox"}, "IP address is not correctly formatted"},
		{[]string{"--mount", "type=volume,dst=/x,bind-propagation=shared", "busybox"}, "cannot mix 'bind-*' options with mount type 'volume'"},
		{[]string{"-v", "relative:dir", "busybox"}, "mount path must be absolute"},
	} {
		_, err := parseArgs(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want %q", tc.args, err, tc.want)
		}
	}
}

func TestSeccompProfileInlined(t *testing.T) {
	p := filepath.Join(t.TempDir(), "p.json")
	_ = os.WriteFile(p, []byte("{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\"\n}\n"), 0o644)
	c := mustParse(t, "--security-opt", "seccomp="+p, "busybox")
	if !reflect.DeepEqual(c.HostConfig.SecurityOpt, []string{`seccomp={"defaultAction":"SCMP_ACT_ALLOW"}`}) {
		t.Errorf("%q", c.HostConfig.SecurityOpt)
	}
}

// TestCreateBodyMatchesDocker sends the same command lines through the real
// docker CLI and through berth to a recording server and compares the JSON
// bodies of POST /containers/create. Skipped where docker 28 is absent.
func TestCreateBodyMatchesDocker(t *testing.T) {
	docker := "/usr/local/bin/docker"
	if _, err := os.Stat(docker); err != nil {
		t.Skip("needs the docker 28 CLI at /usr/local/bin/docker for comparison")
	}
	cases := [][]string{
		{"busybox"},
		{"-it", "--rm", "--name", "x", "busybox", "sh", "-c", "echo hi"},
		{"-e", "A=1,2", "-e", "B", "-l", "k=v", "-w", "/w", "-u", "nobody", "-h", "host", "--entrypoint", "/bin/sh", "busybox", "-c", "true"},
		{"-p", "8080:80", "-p", "127.0.0.1:53:53/udp", "-p", "9000", "-p", "7000-7001:8000-8001", "--expose", "3000", "-P", "busybox"},
		{"-v", "/data", "-v", "/host:/ctr:ro", "-v", "named:/vol", "--tmpfs", "/run:size=1m", "--mount", "type=bind,src=/src,dst=/dst,readonly", "--mount", "type=tmpfs,dst=/t,tmpfs-size=64m", "busybox"},
		{"-m", "512m", "--memory-swap", "-1", "--cpus", "1.5", "-c", "512", "--cpuset-cpus", "0-1", "--pids-limit", "100", "--ulimit", "nofile=1024:2048",
			"--blkio-weight", "300", "--device-read-bps", "/dev/sda:1mb", "--shm-size", "64m", "--oom-kill-disable", "--memory-swappiness", "10", "busybox"},
		{"--privileged", "--cap-add", "NET_ADMIN", "--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--device", "/dev/fuse", "--group-add", "audio",
			"--sysctl", "net.ipv4.ip_forward=1", "--read-only", "--pid", "host", "--ipc", "private", "--uts", "host", "busybox"},
		{"--restart", "on-failure:5", "--init", "--stop-signal", "SIGINT", "--stop-timeout", "20", "--health-cmd", "true", "--health-interval", "5s",
			"--health-retries", "3", "--log-driver", "json-file", "--log-opt", "max-size=1m", "busybox"},
		{"--network", "mynet", "--network-alias", "web", "--ip", "10.1.0.5", "--dns", "8.8.8.8", "--dns-search", "example.com", "--add-host", "db:10.0.0.2", "busybox"},
		{"--network", "none", "--no-healthcheck", "--entrypoint=", "busybox"},
		{"-a", "stdin", "-a", "stdout", "-i", "busybox"},
		{"--mount", "type=volume,src=v,dst=/v,volume-nocopy,volume-label=a=b,volume-opt=o=1", "--device-cgroup-rule", "c 1:3 mr", "--link", "db:db",
			"--health-timeout", "2s", "--health-start-period", "1m", "--cpu-period", "100000", "--cpu-quota", "50000", "--cpuset-mems", "0",
			"--memory-reservation", "100m", "--volumes-from", "other", "--dns-option", "ndots:1", "--storage-opt", "size=1G", "--userns", "host",
			"--oom-score-adj", "100", "--cgroup-parent", "/custom", "--restart", "unless-stopped", "busybox", "true"},
		{"--network", "name=n1,alias=a1,ip=10.0.0.9", "--ip6", "2001:db8::33", "-p", "[::1]:8080:80", "--expose", "7000-7002/udp", "--tmpfs", "/tmp",
			"--device", "/dev/sda:/dev/xvda:r", "--sysctl", "kernel.shm_rmid_forced=1", "--security-opt", "label=disable", "busybox"},
	}
	for i, args := range cases {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			f := newFakeDaemon(t)
			f.json("POST /containers/create", 201, map[string]any{"Id": testID, "Warnings": []string{}})
			cmd := exec.Command(docker, append([]string{"-H", "unix://" + f.sock, "create"}, args...)...)
			cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+t.TempDir(), "B=from-env")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("docker create %v: %v\n%s", args, err, out)
			}
			dockerBody := decode(t, f.body("POST /containers/create"))
			dockerQuery := f.query("POST /containers/create")
			t.Setenv("B", "from-env")
			r := runCLI(t, "", append([]string{"create"}, args...)...)
			if r.code != 0 {
				t.Fatalf("berth create %v: %+v", args, r)
			}
			berthBody := decode(t, f.body("POST /containers/create"))
			if q := f.query("POST /containers/create"); q != dockerQuery {
				t.Errorf("query: berth %q docker %q", q, dockerQuery)
			}
			// docker 28.2 emits -e values and binds in map order (varies run to run).
			sortEnv(dockerBody)
			sortEnv(berthBody)
			for _, d := range diffJSON("", dockerBody, berthBody) {
				t.Errorf("%v: %s", args, d)
			}
		})
	}
}

// sortEnv sorts the lists docker 28.2 builds from Go maps (-e, -v binds).
func sortEnv(body any) {
	m, _ := body.(map[string]any)
	hc, _ := m["HostConfig"].(map[string]any)
	for _, l := range []any{m["Env"], hc["Binds"]} {
		if list, ok := l.([]any); ok {
			sort.Slice(list, func(i, j int) bool { return fmt.Sprint(list[i]) < fmt.Sprint(list[j]) })
		}
	}
}

func decode(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %q: %v", b, err)
	}
	return v
}

// diffJSON lists the paths where two decoded JSON values differ.
func diffJSON(path string, a, b any) []string {
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if aok && bok {
		keys := map[string]bool{}
		for k := range am {
			keys[k] = true
		}
		for k := range bm {
			keys[k] = true
		}
		var sorted []string
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		var out []string
		for _, k := range sorted {
			out = append(out, diffJSON(path+"."+k, am[k], bm[k])...)
		}
		return out
	}
	if !reflect.DeepEqual(a, b) {
		return []string{fmt.Sprintf("%s: docker %v, berth %v", path, a, b)}
	}
	return nil
}
