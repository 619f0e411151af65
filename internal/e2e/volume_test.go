package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// mountOf is one entry of inspect's "Mounts".
type mountOf struct {
	Type, Name, Source, Destination, Driver, Mode, Propagation string
	RW                                                         bool
}

func inspectMounts(t *testing.T, d *daemon, ref string) map[string]mountOf {
	t.Helper()
	var ms []mountOf
	if err := json.Unmarshal([]byte(d.must("docker", "inspect", "-f", "{{json .Mounts}}", ref)), &ms); err != nil {
		t.Fatal(err)
	}
	out := map[string]mountOf{}
	for _, m := range ms {
		out[m.Destination] = m
	}
	return out
}

func mustFail(t *testing.T, d *daemon, want string, args ...string) string {
	t.Helper()
	out, err := d.docker(args...)
	if err == nil {
		t.Fatalf("docker %s succeeded:\n%s", strings.Join(args, " "), out)
	}
	if !strings.Contains(out, want) {
		t.Fatalf("docker %s: want %q in:\n%s", strings.Join(args, " "), want, out)
	}
	return out
}

func volumeNames(t *testing.T, d *daemon) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, n := range strings.Fields(d.must("docker", "volume", "ls", "-q")) {
		out[n] = true
	}
	return out
}

func TestDockerVolumes(t *testing.T) {
	dockerCLI(t)
	requireRegistry(t)
	d := startDaemon(t, "--bridge", "none")
	d.must("docker", "pull", bb)
	volRoot := filepath.Join(d.root, "data", "volumes")

	// volume create / ls / inspect with labels; bad names get docker's errors.
	if out := d.must("docker", "volume", "create", "--label", "team=a", "vol1"); out != "vol1\n" {
		t.Fatalf("create: %q", out)
	}
	d.must("docker", "volume", "create", "--label", "team=b", "vol2")
	if out := d.must("docker", "volume", "ls", "--filter", "label=team=a", "--format", "{{.Name}} {{.Driver}}"); out != "vol1 local\n" {
		t.Fatalf("ls label filter: %q", out)
	}
	if out := d.must("docker", "volume", "inspect", "-f", "{{.Name}} {{.Driver}} {{.Labels.team}} {{.Mountpoint}} {{.Scope}}", "vol1"); out != "vol1 local a "+volRoot+"/vol1/_data local\n" {
		t.Fatalf("inspect: %q", out)
	}
	mustFail(t, d, `create a/b: "a/b" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`,
		"volume", "create", "a/b")
	mustFail(t, d, `invalid option: "foo"`, "volume", "create", "-o", "foo=bar", "badopt")
	mustFail(t, d, "no such volume", "volume", "inspect", "nosuch")
	if volumeNames(t, d)["badopt"] {
		t.Fatal("a refused create left a volume")
	}

	// -v name:/data: data persists across containers.
	d.must("docker", "run", "--network", "none", "--rm", "-v", "vol1:/data", bb, "sh", "-c", "echo hello > /data/f")
	if out := d.must("docker", "run", "--network", "none", "--rm", "-v", "vol1:/data", bb, "cat", "/data/f"); out != "hello\n" {
		t.Fatalf("volume data: %q", out)
	}
	if b, _ := os.ReadFile(filepath.Join(volRoot, "vol1", "_data", "f")); string(b) != "hello\n" {
		t.Fatalf("host view of the volume: %q", b)
	}

	// volume-subpath mounts a directory of the volume; a missing one is refused.
	d.must("docker", "run", "--network", "none", "--rm", "-v", "vol1:/data", bb, "mkdir", "/data/sub")
	d.must("docker", "run", "--network", "none", "--rm", "--mount", "type=volume,src=vol1,dst=/s,volume-subpath=sub", bb, "sh", "-c", "echo s > /s/x")
	if b, _ := os.ReadFile(filepath.Join(volRoot, "vol1", "_data", "sub", "x")); string(b) != "s\n" {
		t.Fatalf("volume-subpath: %q", b)
	}
	mustFail(t, d, "no such file or directory", "run", "--network", "none", "--rm", "--mount", "type=volume,src=vol1,dst=/s,volume-subpath=nope", bb, "true")

	// A volume a container (even stopped) refers to cannot be removed.
	holder := strings.TrimSpace(d.must("docker", "create", "--network", "none", "--name", "holder", "-v", "vol1:/data:ro", bb, "true"))
	mustFail(t, d, "remove vol1: volume is in use - ["+holder+"]", "volume", "rm", "vol1")
	mustFail(t, d, "volume is in use", "volume", "rm", "-f", "vol1")
	if out := d.must("docker", "volume", "ls", "-q", "--filter", "dangling=true"); strings.Contains(out, "vol1") || !strings.Contains(out, "vol2") {
		t.Fatalf("dangling filter: %q", out)
	}

	// inspect shows docker's Mounts and HostConfig.Binds round-trips.
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "f"), []byte("from host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d.must("docker", "create", "--network", "none", "--name", "mnts", "-v", "vol1:/data", "-v", host+":/h:ro", "-v", "/anon",
		"--mount", "type=tmpfs,dst=/tm,tmpfs-size=1m", "--tmpfs", "/run", bb, "true")
	ms := inspectMounts(t, d, "mnts")
	if m := ms["/data"]; m != (mountOf{Type: "volume", Name: "vol1", Source: volRoot + "/vol1/_data", Destination: "/data", Driver: "local", Mode: "z", RW: true}) {
		t.Errorf("named volume mount: %+v", m)
	}
	if m := ms["/h"]; m != (mountOf{Type: "bind", Source: host, Destination: "/h", Mode: "ro", RW: false, Propagation: "rprivate"}) {
		t.Errorf("bind mount: %+v", m)
	}
	if m := ms["/anon"]; m.Type != "volume" || len(m.Name) != 64 || m.Mode != "" || !m.RW {
		t.Errorf("anonymous mount: %+v", m)
	}
	if m := ms["/tm"]; m.Type != "tmpfs" || !m.RW {
		t.Errorf("tmpfs mount: %+v", m)
	}
	if _, ok := ms["/run"]; ok || len(ms) != 4 {
		t.Errorf("mounts: %+v", ms)
	}
	// The docker CLI sends -v in map order: compare as a set.
	var binds []string
	if err := json.Unmarshal([]byte(d.must("docker", "inspect", "-f", "{{json .HostConfig.Binds}}", "mnts")), &binds); err != nil {
		t.Fatal(err)
	}
	if slices.Sort(binds); !slices.Equal(binds, []string{host + ":/h:ro", "vol1:/data"}) {
		t.Errorf("HostConfig.Binds round-trip: %q", binds)
	}
	if out := d.must("docker", "inspect", "-f", "{{json .HostConfig.Mounts}}", "mnts"); out != `[{"Type":"tmpfs","Target":"/tm","TmpfsOptions":{"SizeBytes":1048576}}]`+"\n" {
		t.Errorf("HostConfig.Mounts round-trip: %s", out)
	}
	anonName := ms["/anon"].Name
	d.must("docker", "rm", "-v", "mnts")
	if volumeNames(t, d)[anonName] {
		t.Error("rm -v left the anonymous volume")
	}

	// A running container holds a device-backed (tmpfs) volume across a
	// daemon restart.
	d.must("docker", "volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=1m", "tvr")
	d.must("docker", "run", "-d", "--network", "none", "--name", "runner", "-v", "tvr:/t", bb, "sh", "-c", "echo kept > /t/f; sleep 300")
	if out := d.must("docker", "ps", "-q", "--no-trunc", "--filter", "volume=tvr"); !strings.Contains(out, strings.TrimSpace(d.must("docker", "inspect", "-f", "{{.Id}}", "runner"))) {
		t.Fatalf("ps --filter volume: %q", out)
	}
	if out := d.must("docker", "ps", "-aq", "--filter", "volume=/nowhere"); out != "" {
		t.Fatalf("ps --filter volume=/nowhere: %q", out)
	}
	tvrData := filepath.Join(volRoot, "tvr", "_data")

	// The daemon restarts: data and in-use references survive.
	d.kill()
	d.start("--bridge", "none")
	waitFor(t, func() bool {
		out, _ := d.docker("exec", "runner", "cat", "/t/f")
		return out == "kept\n"
	})
	mustFail(t, d, "volume is in use", "volume", "rm", "tvr")
	if mi, _ := os.ReadFile("/proc/self/mountinfo"); !strings.Contains(string(mi), tvrData) {
		t.Fatal("the running container's tmpfs volume was unmounted by the restart")
	}
	d.must("docker", "rm", "-f", "runner")
	if mi, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(mi), tvrData) {
		t.Fatal("tmpfs volume still mounted after its last user was removed")
	}
	d.must("docker", "volume", "rm", "tvr")
	if out := d.must("docker", "run", "--network", "none", "--rm", "-v", "vol1:/data", bb, "cat", "/data/f"); out != "hello\n" {
		t.Fatalf("volume data after daemon restart: %q", out)
	}
	mustFail(t, d, "volume is in use - ["+holder+"]", "volume", "rm", "vol1")
	d.must("docker", "rm", "holder")
	d.must("docker", "volume", "rm", "vol1")
	if _, err := os.Stat(filepath.Join(volRoot, "vol1")); !os.IsNotExist(err) {
		t.Fatalf("removed volume's directory: %v", err)
	}

	// Copy-up: a fresh named volume gets the image's content, with modes;
	// nocopy keeps it empty.
	if out := d.must("docker", "run", "--network", "none", "--rm", "-v", "cu:/etc", "-v", "cutmp:/tmp", bb, "sh", "-c", "cat /etc/passwd | head -1; stat -c %a /tmp"); out != "root:x:0:0:root:/root:/bin/sh\n1777\n" {
		t.Fatalf("copy-up seen in the container: %q", out)
	}
	if b, err := os.ReadFile(filepath.Join(volRoot, "cu", "_data", "passwd")); err != nil || !strings.HasPrefix(string(b), "root:x:0:0:") {
		t.Fatalf("copy-up on the host: %q %v", b, err)
	}
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(volRoot, "cutmp", "_data"), &st); err != nil || st.Mode&0o7777 != 0o1777 {
		t.Fatalf("copy-up kept the directory mode: %o %v", st.Mode&0o7777, err)
	}
	if out := d.must("docker", "run", "--network", "none", "--rm", "--mount", "type=volume,src=nc,dst=/etc,volume-nocopy", bb, "sh", "-c", "test -e /etc/passwd && echo copied || echo empty"); out != "empty\n" {
		t.Fatalf("volume-nocopy: %q", out)
	}

	// Binds: ro refuses writes (EROFS), rw writes through, a missing -v
	// source is created, a missing --mount source is refused.
	out, err := d.docker("run", "--network", "none", "--rm", "-v", host+":/h:ro", bb, "sh", "-c", "cat /h/f; touch /h/x")
	if exitCode(err) != 1 || !strings.Contains(out, "from host") || !strings.Contains(out, "Read-only file system") {
		t.Fatalf("ro bind: %v\n%s", err, out)
	}
	d.must("docker", "run", "--network", "none", "--rm", "-v", host+":/h", bb, "sh", "-c", "echo w > /h/new")
	if b, _ := os.ReadFile(filepath.Join(host, "new")); string(b) != "w\n" {
		t.Fatalf("rw bind write: %q", b)
	}
	missing := filepath.Join(host, "a", "b")
	d.must("docker", "run", "--network", "none", "--rm", "-v", missing+":/m", bb, "true")
	if fi, err := os.Stat(missing); err != nil || !fi.IsDir() {
		t.Fatalf("missing -v source not created: %v", err)
	}
	before := d.must("docker", "ps", "-aq")
	nope := filepath.Join(host, "nope")
	mustFail(t, d, `invalid mount config for type "bind": bind source path does not exist: `+nope,
		"run", "--network", "none", "--rm", "--name", "refused", "--mount", "type=bind,src="+nope+",dst=/x", bb, "true")
	if after := d.must("docker", "ps", "-aq"); after != before {
		t.Fatalf("refused --mount left a container: %q", after)
	}
	if _, err := os.Stat(nope); !os.IsNotExist(err) {
		t.Fatal("refused --mount created its source")
	}
	if out := d.must("docker", "run", "--network", "none", "--rm", "--mount", "type=bind,src="+host+",dst=/b,readonly", bb, "cat", "/b/f"); out != "from host\n" {
		t.Fatalf("--mount bind: %q", out)
	}

	// Bind propagation: a shared or slave bind needs a source mount that
	// propagates (docker's errors otherwise), and then it does.
	mustFail(t, d, "path "+host+" is mounted on ", "run", "--network", "none", "--rm", "-v", host+":/h:rshared", bb, "true")
	mustFail(t, d, "but it is not a shared or slave mount", "run", "--network", "none", "--rm", "-v", host+":/h:rslave", bb, "true")
	shared := filepath.Join(t.TempDir(), "shared")
	if err := os.Mkdir(shared, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", shared, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(shared, unix.MNT_DETACH)
	if err := unix.Mount("", shared, "", unix.MS_SHARED, ""); err != nil {
		t.Fatal(err)
	}
	if out := d.must("docker", "run", "--network", "none", "--rm", "-v", shared+":/h:rshared", bb, "grep", " /h ", "/proc/self/mountinfo"); !strings.Contains(out, " shared:") {
		t.Fatalf("rshared bind: %q", out)
	}
	if out := d.must("docker", "run", "--network", "none", "--rm", "--mount", "type=bind,src="+shared+",dst=/h,bind-propagation=rslave", bb, "grep", " /h ", "/proc/self/mountinfo"); !strings.Contains(out, " master:") {
		t.Fatalf("rslave bind: %q", out)
	}

	// tmpfs: --mount with size and mode, --tmpfs with options.
	out = d.must("docker", "run", "--network", "none", "--rm", "--mount", "type=tmpfs,dst=/tm,tmpfs-size=1m,tmpfs-mode=1770", bb, "sh", "-c", "grep ' /tm ' /proc/mounts; stat -c %a /tm")
	if !strings.Contains(out, "tmpfs /tm tmpfs rw,nosuid,nodev,noexec") || !strings.Contains(out, "size=1024k") || !strings.HasSuffix(out, "\n1770\n") {
		t.Fatalf("--mount tmpfs: %q", out)
	}
	if out := d.must("docker", "run", "--network", "none", "--rm", "--tmpfs", "/run:size=3m,exec", bb, "grep", " /run ", "/proc/mounts"); !strings.Contains(out, "size=3072k") || strings.Contains(out, "noexec") {
		t.Fatalf("--tmpfs: %q", out)
	}

	// --volumes-from, rw and ro.
	d.must("docker", "run", "--network", "none", "--name", "src", "-v", "vf:/shared", bb, "sh", "-c", "echo from > /shared/x")
	if out := d.must("docker", "run", "--network", "none", "--rm", "--volumes-from", "src", bb, "cat", "/shared/x"); out != "from\n" {
		t.Fatalf("--volumes-from: %q", out)
	}
	out, err = d.docker("run", "--network", "none", "--rm", "--volumes-from", "src:ro", bb, "touch", "/shared/y")
	if err == nil || !strings.Contains(out, "Read-only file system") {
		t.Fatalf("--volumes-from :ro: %v %s", err, out)
	}

	// docker cp into and out of volumes and binds, running or stopped.
	d.must("docker", "run", "-d", "--network", "none", "--name", "cpc", "--read-only", "-v", "cpv:/data", "-v", host+":/h:ro", bb, "sleep", "300")
	local := filepath.Join(t.TempDir(), "in.txt")
	if err := os.WriteFile(local, []byte("copied in\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d.must("docker", "cp", local, "cpc:/data/")
	if out := d.must("docker", "exec", "cpc", "cat", "/data/in.txt"); out != "copied in\n" {
		t.Fatalf("cp into a volume of a running container: %q", out)
	}
	mustFail(t, d, "mounted volume is marked read-only", "cp", local, "cpc:/h/")
	mustFail(t, d, "container rootfs is marked read-only", "cp", local, "cpc:/")
	outDir := t.TempDir()
	d.must("docker", "cp", "cpc:/h/f", filepath.Join(outDir, "f"))
	if b, _ := os.ReadFile(filepath.Join(outDir, "f")); string(b) != "from host\n" {
		t.Fatalf("cp out of a bind: %q", b)
	}
	d.must("docker", "stop", "-t", "0", "cpc")
	d.must("docker", "cp", "cpc:/data", outDir)
	if b, _ := os.ReadFile(filepath.Join(outDir, "data", "in.txt")); string(b) != "copied in\n" {
		t.Fatalf("cp out of a volume of a stopped container: %q", b)
	}
	d.must("docker", "rm", "cpc")

	// --read-only: the rootfs refuses writes, volumes and tmpfs do not.
	out, err = d.docker("run", "--network", "none", "--rm", "--read-only", bb, "touch", "/x")
	if err == nil || !strings.Contains(out, "Read-only file system") {
		t.Fatalf("--read-only rootfs: %v %s", err, out)
	}
	d.must("docker", "run", "--network", "none", "--rm", "--read-only", "-v", "rovol:/data", "--tmpfs", "/tmp", bb, "sh", "-c", "touch /data/x /tmp/y")

	// Device-backed volume: a tmpfs mounted at first use, unmounted after.
	d.must("docker", "volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=2m", "tv")
	if out := d.must("docker", "run", "--network", "none", "--rm", "-v", "tv:/t", bb, "grep", " /t ", "/proc/mounts"); !strings.Contains(out, "tmpfs /t tmpfs") || !strings.Contains(out, "size=2048k") {
		t.Fatalf("tmpfs volume: %q", out)
	}
	if mi, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(mi), filepath.Join(volRoot, "tv", "_data")) {
		t.Fatal("tmpfs volume still mounted after its last user exited")
	}

	// Anonymous volumes: --rm removes them, as does rm -v; named ones stay.
	n := len(volumeNames(t, d))
	d.must("docker", "run", "--network", "none", "--rm", "-v", "/anon2", bb, "true")
	if got := len(volumeNames(t, d)); got != n {
		t.Fatalf("--rm left an anonymous volume: %d volumes, want %d", got, n)
	}
	d.must("docker", "create", "--network", "none", "--name", "anon", "-v", "/data", "-v", "keep:/keep", bb, "true")
	anonName = inspectMounts(t, d, "anon")["/data"].Name
	if !volumeNames(t, d)[anonName] {
		t.Fatal("anonymous volume not listed")
	}
	d.must("docker", "rm", "-v", "anon")
	if vs := volumeNames(t, d); vs[anonName] || !vs["keep"] {
		t.Fatalf("rm -v: %v", vs)
	}

	// An image's VOLUME becomes an anonymous volume filled from the image,
	// owners kept.
	d.must("docker", "run", "--network", "none", "--name", "mkimg", bb, "sh", "-c", "mkdir /vol && echo baked > /vol/f && chown 1000:1000 /vol/f")
	d.must("docker", "commit", "--change", "VOLUME /vol", "mkimg", "withvol:1")
	d.must("docker", "rm", "mkimg")
	if out := d.must("docker", "run", "--network", "none", "--name", "wv", "withvol:1", "sh", "-c", "cat /vol/f; stat -c %u /vol/f"); out != "baked\n1000\n" {
		t.Fatalf("image VOLUME copy-up: %q", out)
	}
	wv := inspectMounts(t, d, "wv")["/vol"]
	if wv.Type != "volume" || len(wv.Name) != 64 || wv.Mode != "" || !wv.RW {
		t.Fatalf("image VOLUME mount: %+v", wv)
	}
	d.must("docker", "rm", "-v", "wv")
	if volumeNames(t, d)[wv.Name] {
		t.Fatal("rm -v left the image VOLUME's volume")
	}

	// Volume events: create, mount, unmount, destroy.
	// The past events, then the stream is cut (--until hangs under load).
	evCtx, evCancel := context.WithTimeout(context.Background(), 10*time.Second)
	evCmd := exec.CommandContext(evCtx, "docker", "events", "--since", "0", "--filter", "type=volume", "--format", "{{.Action}} {{.Actor.ID}}")
	evCmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+d.sock, "DOCKER_CONFIG="+filepath.Join(d.root, "dockercfg"))
	evOut, _ := evCmd.Output()
	evCancel()
	ev := string(evOut)
	var cuEvents []string
	for _, l := range strings.Split(ev, "\n") {
		if strings.HasSuffix(l, " cu") {
			cuEvents = append(cuEvents, strings.TrimSuffix(l, " cu"))
		}
	}
	if strings.Join(cuEvents, ",") != "create,mount,unmount" {
		t.Errorf("volume events: %q", ev)
	}

	// system df lists volumes.
	if out := d.must("docker", "system", "df", "-v", "--format", "{{range .Volumes}}{{.Name}} {{end}}"); !strings.Contains(out, "keep") {
		t.Errorf("system df: %q", out)
	}

	// prune: berth speaks API 1.41, where prune removes every unused
	// volume, named ones too, as dockerd 20.10 does (1.42 made it
	// anonymous-only unless all=true; the API adds the filter for older
	// clients, see internal/api normalizeVolumePrune).
	d.must("docker", "create", "--network", "none", "-v", "/pruneme", bb, "true")
	d.must("docker", "container", "prune", "-f")
	anons := func(vs map[string]bool) int {
		n := 0
		for name := range vs {
			if len(name) == 64 {
				n++
			}
		}
		return n
	}
	if n := anons(volumeNames(t, d)); n != 1 {
		t.Fatalf("expected one orphaned anonymous volume, got %d", n)
	}
	// A label filter narrows it: the named vol2 (team=b) goes, the rest stay.
	out = d.must("docker", "volume", "prune", "-f", "--filter", "label=team=b")
	if vs := volumeNames(t, d); vs["vol2"] || !vs["keep"] || anons(vs) != 1 || !strings.Contains(out, "Deleted Volumes:\nvol2\n") {
		t.Fatalf("prune --filter label=team=b at 1.41: %q, left %v", out, vs)
	}
	// Without filters: named and anonymous unused volumes; one a stopped
	// container uses survives.
	d.must("docker", "create", "--network", "none", "--name", "user2", "-v", "vf:/shared", bb, "true")
	out = d.must("docker", "volume", "prune", "-f")
	if vs := volumeNames(t, d); !vs["vf"] || vs["keep"] || anons(vs) != 0 || !strings.Contains(out, "\nkeep\n") {
		t.Fatalf("prune at 1.41: %q, left %v", out, vs)
	}
	// The all=true filter a 1.42 client sends means the same here.
	d.must("docker", "volume", "create", "late")
	d.must("docker", "volume", "prune", "-f", "--filter", "all=true")
	if vs := volumeNames(t, d); !vs["vf"] || vs["late"] {
		t.Fatalf("prune --filter all=true: %v", vs)
	}
}

// TestVolumesUsernsRemap: under userns-remap a fresh volume and a created
// -v host directory belong to the container's root; copied-up content
// keeps the image's (shifted) owners.
func TestVolumesUsernsRemap(t *testing.T) {
	dockerCLI(t)
	requireRegistry(t)
	keepEtcFiles(t) // registered first: runs after the daemon's cleanup
	d := startDaemon(t, "--bridge", "none", "--userns-remap", "default")
	for _, p := range []string{d.root, filepath.Dir(d.root)} {
		if err := os.Chmod(p, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	uid := subStart(t, "/etc/subuid", "berth")
	d.must("docker", "pull", bb)
	host := filepath.Join(d.root, "binds", "new")
	out := d.must("docker", "run", "--rm", "--network", "none", "-v", "fresh:/newdir", "-v", "cu:/etc", "-v", host+":/m", bb,
		"sh", "-c", "touch /newdir/x /m/y && stat -c '%u %g' /newdir/x /etc/passwd /m/y")
	if out != "0 0\n0 0\n0 0\n" {
		t.Fatalf("owners inside: %q", out)
	}
	for _, p := range []string{filepath.Join(host, "y"), host} {
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil || st.Uid != uint32(uid) {
			t.Errorf("%s: host owner %d, want %d (%v)", p, st.Uid, uid, err)
		}
	}
}
