package spec

import (
	"errors"
	"io"
	"io/fs"
	"slices"
	"strings"

	"github.com/moby/sys/user"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// args merges Entrypoint and Cmd as docker does (daemon/commit.go merge,
// daemon/create.go mergeAndVerifyConfig, getEntrypointAndArgs).
func args(imgEntrypoint, imgCmd, entrypoint, cmd []string) ([]string, error) {
	if len(entrypoint) == 0 {
		if len(cmd) == 0 {
			cmd = imgCmd
		}
		if entrypoint == nil {
			entrypoint = imgEntrypoint
		}
	}
	// --entrypoint "" arrives as [""]: no entrypoint, and (above) no image Cmd.
	if len(entrypoint) == 1 && entrypoint[0] == "" {
		entrypoint = nil
	}
	if len(entrypoint) == 0 && len(cmd) == 0 {
		return nil, invalidf("no command specified")
	}
	out := make([]string, 0, len(entrypoint)+len(cmd))
	out = append(out, entrypoint...)
	return append(out, cmd...), nil
}

// mergeEnv is docker's merge (container env first, then image entries whose
// key the container does not set) followed by CreateDaemonEnvironment (PATH,
// HOSTNAME, TERM defaults, replaced or unset by the merged env).
func mergeEnv(imgEnv, env []string, hostname string, tty bool) []string {
	out := make([]string, 0, 3+len(env)+len(imgEnv))
	out = append(out, DefaultPathEnv, "HOSTNAME="+hostname)
	if tty {
		out = append(out, "TERM=xterm")
	}
	merged := env
	if len(env) == 0 {
		merged = imgEnv
	} else if len(imgEnv) > 0 {
		merged = append(make([]string, 0, len(env)+len(imgEnv)), env...)
		for _, ie := range imgEnv {
			k := envKey(ie)
			found := false
			for _, e := range env {
				if envKey(e) == k {
					found = true
					break
				}
			}
			if !found {
				merged = append(merged, ie)
			}
		}
	}
	// ReplaceOrAppendEnvValues: "K=V" replaces or appends; a bare "K" removes.
	for _, e := range merged {
		k, _, hasValue := strings.Cut(e, "=")
		idx := -1
		for i, d := range out {
			if envKey(d) == k {
				idx = i
				break
			}
		}
		switch {
		case !hasValue:
			if idx >= 0 {
				out = append(out[:idx], out[idx+1:]...)
			}
		case idx >= 0:
			out[idx] = e
		default:
			out = append(out, e)
		}
	}
	return out
}

func envKey(e string) string {
	k, _, _ := strings.Cut(e, "=")
	return k
}

func (g *gen) hostname() string {
	if g.o.Hostname != "" {
		return g.o.Hostname
	}
	id := g.o.ID
	if len(id) > 12 {
		id = id[:12]
	}
	return id
}

// process sets args, env, cwd, terminal, hostname, init, stop signal and
// annotations (moby's withCommonOptions).
func (g *gen) process() error {
	o, s, img := g.o, g.s, g.img
	a, err := args(img.Entrypoint, img.Cmd, o.Entrypoint, o.Cmd)
	if err != nil {
		return err
	}
	hostname := g.hostname()
	if len(hostname) > 64 {
		return invalidf("hostname %q is too long (maximum %d bytes)", hostname, 64)
	}
	p := s.Process
	p.Args = a
	if g.initEnabled() {
		if o.Daemon.InitPath == "" {
			return invalidf("--init requested but the daemon has no init binary")
		}
		p.Args = append([]string{InitPathInContainer, "--"}, a...)
		g.initMount = &specs.Mount{
			Destination: InitPathInContainer,
			Type:        "bind",
			Source:      o.Daemon.InitPath,
			Options:     []string{"bind", "ro"},
		}
	}
	p.Env = mergeEnv(img.Env, o.Env, hostname, o.Tty)
	p.Cwd = o.WorkingDir
	if p.Cwd == "" {
		p.Cwd = img.WorkingDir
	}
	if p.Cwd == "" {
		p.Cwd = "/"
	}
	p.Terminal = o.Tty
	if o.Tty && (o.ConsoleSize[0] != 0 || o.ConsoleSize[1] != 0) {
		p.ConsoleSize = &specs.Box{Height: o.ConsoleSize[0], Width: o.ConsoleSize[1]}
	}
	p.NoNewPrivileges = g.sec.noNewPrivileges
	if o.OomScoreAdj < -1000 || o.OomScoreAdj > 1000 {
		return invalidf("Invalid value %d, range for oom score adj is [-1000, 1000]", o.OomScoreAdj)
	}
	score := o.OomScoreAdj
	p.OOMScoreAdj = &score

	if !isHost(o.UTSMode) {
		s.Hostname = hostname
	}

	sig := o.StopSignal
	if sig == "" {
		sig = img.StopSignal
	}
	if sig == "" {
		sig = "SIGTERM"
	}
	s.Annotations = make(map[string]string, len(o.Annotations)+1)
	for k, v := range o.Annotations {
		s.Annotations[k] = v
	}
	s.Annotations[AnnotationStopSignal] = sig
	return nil
}

// initEnabled: docker only adds its init in a private pid namespace.
func (g *gen) initEnabled() bool {
	o := g.o
	if o.PidMode != "" {
		return false
	}
	if o.Init != nil {
		return *o.Init
	}
	return o.Daemon.Init
}

// user resolves -u and --group-add against the rootfs's passwd and group
// files with moby/sys/user, the library docker uses, so the rules and the
// messages ("unable to find user x: no matching entries in passwd file") are
// docker's.
func (g *gen) user() error {
	o := g.o
	spec := o.User
	if spec == "" {
		spec = g.img.User
	}
	passwd := openOptional(o.RootFS, "etc/passwd")
	group := openOptional(o.RootFS, "etc/group")
	defer closeAll(passwd, group)
	eu, err := user.GetExecUser(spec, nil, passwd, group)
	if err != nil {
		return invalid(err)
	}
	u := specs.User{
		UID:            uint32(eu.Uid),
		GID:            uint32(eu.Gid),
		AdditionalGids: make([]uint32, 0, 1+len(eu.Sgids)+len(o.GroupAdd)),
	}
	u.AdditionalGids = append(u.AdditionalGids, u.GID)
	for _, gid := range eu.Sgids {
		u.AdditionalGids = append(u.AdditionalGids, uint32(gid))
	}
	if len(o.GroupAdd) > 0 {
		group2 := openOptional(o.RootFS, "etc/group")
		defer closeAll(group2)
		extra, err := user.GetAdditionalGroups(o.GroupAdd, group2)
		if err != nil {
			return invalid(err)
		}
		// moby/sys/user returns them in map order; sort for a stable spec.
		slices.Sort(extra)
		for _, gid := range extra {
			u.AdditionalGids = append(u.AdditionalGids, uint32(gid))
		}
	}
	g.s.Process.User = u
	return nil
}

// openOptional returns nil (an empty file to moby/sys/user) when the file is
// absent, so that numeric ids work in images without /etc/passwd.
func openOptional(fsys fs.FS, name string) io.Reader {
	if fsys == nil {
		return nil
	}
	f, err := fsys.Open(name)
	if err != nil {
		return nil
	}
	return f
}

func closeAll(rs ...io.Reader) {
	for _, r := range rs {
		if c, ok := r.(io.Closer); ok {
			_ = c.Close()
		}
	}
}

var knownRlimits = map[string]bool{
	"as": true, "core": true, "cpu": true, "data": true, "fsize": true, "locks": true,
	"memlock": true, "msgqueue": true, "nice": true, "nofile": true, "nproc": true,
	"rss": true, "rtprio": true, "rttime": true, "sigpending": true, "stack": true,
}

// rlimits passes --ulimit through (merged over the daemon's default-ulimits
// by name); the runtime rejects values above what it may set.
func (g *gen) rlimits() error {
	o := g.o
	n := len(o.Ulimits) + len(o.Daemon.Ulimits)
	if n == 0 {
		return nil
	}
	out := make([]specs.POSIXRlimit, 0, n)
	seen := make(map[string]bool, n)
	add := func(ul Ulimit) error {
		name := strings.ToLower(ul.Name)
		if !knownRlimits[name] {
			return invalidf("invalid ulimit type: %s", ul.Name)
		}
		if ul.Soft > ul.Hard && ul.Hard != -1 {
			return invalidf("ulimit soft limit must be less than or equal to hard limit: %d > %d", ul.Soft, ul.Hard)
		}
		if seen[name] {
			return nil
		}
		seen[name] = true
		out = append(out, specs.POSIXRlimit{Type: "RLIMIT_" + strings.ToUpper(name), Soft: uint64(ul.Soft), Hard: uint64(ul.Hard)})
		return nil
	}
	for _, ul := range o.Ulimits {
		if err := add(ul); err != nil {
			return err
		}
	}
	for _, ul := range o.Daemon.Ulimits {
		if err := add(ul); err != nil {
			return err
		}
	}
	g.s.Process.Rlimits = out
	return nil
}

var errNoStat = errors.New("host device lookup is not available")
