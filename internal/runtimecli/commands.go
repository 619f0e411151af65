package runtimecli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/runtime"
)

type createFlags struct {
	bundle, pidFile, console string
	noPivot, noKeyring       bool
	preserve                 int
}

func (c *createFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.bundle, "bundle", ".", "bundle directory")
	fs.StringVar(&c.bundle, "b", ".", "bundle directory")
	fs.StringVar(&c.pidFile, "pid-file", "", "write the init pid here")
	fs.StringVar(&c.console, "console-socket", "", "unix socket receiving the pty master")
	fs.BoolVar(&c.noPivot, "no-pivot", false, "use MS_MOVE + chroot instead of pivot_root")
	fs.BoolVar(&c.noKeyring, "no-new-keyring", false, "keep the session keyring")
	fs.IntVar(&c.preserve, "preserve-fds", 0, "pass fds 3..3+N-1 to the container")
}

func (c *createFlags) opts() *runtime.CreateOpts {
	o := &runtime.CreateOpts{
		ConsoleSocket: c.console, PidFile: c.pidFile, NoPivot: c.noPivot, NoNewKeyring: c.noKeyring,
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
	}
	for i := 0; i < c.preserve; i++ {
		o.ExtraFiles = append(o.ExtraFiles, os.NewFile(uintptr(3+i), "preserved"))
	}
	return o
}

func cmdCreate(ctx context.Context, g *globals, rt *runtime.Runtime, args []string) (int, error) {
	fs := flag.NewFlagSet("create", flag.ContinueOnError)
	var c createFlags
	c.register(fs)
	if err := parse(fs, args); err != nil {
		return 2, err
	}
	id, err := needID(fs)
	if err != nil {
		return 2, err
	}
	return 0, rt.Create(ctx, id, c.bundle, c.opts())
}

func cmdStart(ctx context.Context, g *globals, rt *runtime.Runtime, args []string) (int, error) {
	fs := flag.NewFlagSet("start", flag.ContinueOnError)
	if err := parse(fs, args); err != nil {
		return 2, err
	}
	id, err := needID(fs)
	if err != nil {
		return 2, err
	}
	return 0, rt.Start(ctx, id)
}

// cmdRun is create + start; in the foreground it forwards signals, relays
// a terminal if there is no console socket, waits, deletes and exits with
// the container's status.
func cmdRun(ctx context.Context, g *globals, rt *runtime.Runtime, args []string) (int, error) {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	var c createFlags
	c.register(fs)
	var detach bool
	fs.BoolVar(&detach, "detach", false, "do not wait for the container")
	fs.BoolVar(&detach, "d", false, "do not wait for the container")
	fs.Bool("keep", false, "ignored")
	if err := parse(fs, args); err != nil {
		return 2, err
	}
	id, err := needID(fs)
	if err != nil {
		return 2, err
	}
	o := c.opts()
	var relay *ttyRelay
	if !detach {
		// become the subreaper so that the init (a grandchild when it
		// lives in a new pid namespace) is ours to wait for
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			return 1, err
		}
		if c.console == "" {
			relay = &ttyRelay{}
			o.OnConsole = relay.attach
		}
	}
	sigs := make(chan os.Signal, 64)
	if !detach {
		signal.Notify(sigs)
	}
	if err := rt.Create(ctx, id, c.bundle, o); err != nil {
		return 1, err
	}
	// the pid before start: `true` may be gone (and State say "stopped",
	// pid 0) by the time start returns
	st, err := rt.State(ctx, id)
	if err != nil {
		return 1, err
	}
	pid := st.Pid
	if err := rt.Start(ctx, id); err != nil {
		_ = rt.Delete(ctx, id, true)
		return 1, err
	}
	if detach {
		return 0, nil
	}
	if relay != nil {
		relay.start()
		defer relay.restore()
	}
	code := waitForwarding(pid, sigs, func(sig unix.Signal) { _ = rt.Kill(ctx, id, sig, false) }, relay)
	if relay != nil {
		relay.drain()
	}
	_ = rt.Delete(ctx, id, true)
	return code, nil
}

// waitForwarding waits for pid with a blocking wait4 in this goroutine (it
// returns the moment the process exits: no SIGCHLD to channel to goroutine
// hand-offs) while a goroutine forwards signals. Anything else that
// reparents to us meanwhile (we are a subreaper) is reaped on the way.
func waitForwarding(pid int, sigs chan os.Signal, fwd func(unix.Signal), relay *ttyRelay) int {
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case s := <-sigs:
				switch sig := s.(unix.Signal); sig {
				case unix.SIGCHLD, unix.SIGURG, unix.SIGPIPE:
				case unix.SIGWINCH:
					if relay != nil {
						relay.resize()
					}
				default:
					fwd(sig)
				}
			}
		}
	}()
	for {
		var ws unix.WaitStatus
		wpid, err := unix.Wait4(-1, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 255 // ECHILD: the process is not ours to wait for
		}
		if wpid == pid {
			if ws.Signaled() {
				return 128 + int(ws.Signal())
			}
			return ws.ExitStatus()
		}
	}
}

func cmdState(ctx context.Context, g *globals, rt *runtime.Runtime, args []string) (int, error) {
	fs := flag.NewFlagSet("state", flag.ContinueOnError)
	if err := parse(fs, args); err != nil {
		return 2, err
	}
	id, err := needID(fs)
	if err != nil {
		return 2, err
	}
	st, err := rt.Inspect(ctx, id)
	if err != nil {
		return 1, err
	}
	b, _ := json.MarshalIndent(st, "", "  ")
	fmt.Println(string(b))
	return 0, nil
}

func cmdKill(ctx context.Context, g *globals, rt *runtime.Runtime, args []string) (int, error) {
	fs := flag.NewFlagSet("kill", flag.ContinueOnError)
	var all bool
	fs.BoolVar(&all, "all", false, "signal every process of the container")
	fs.BoolVar(&all, "a", false, "signal every process of the container")
	if err := parse(fs, args); err != nil {
		return 2, err
	}
	id, err := needID(fs)
	if err != nil {
		return 2, err
	}
	sig := unix.SIGTERM
	if fs.NArg() > 1 {
		if sig, err = parseSignal(fs.Arg(1)); err != nil {
			return 2, err
		}
	}
	return 0, rt.Kill(ctx, id, sig, all)
}

func parseSignal(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("invalid signal %q", s)
		}
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}

func cmdDelete(ctx context.Context, g *globals, rt *runtime.Runtime, args []string) (int, error) {
	fs := flag.NewFlagSet("delete", flag.ContinueOnError)
	var force bool
	fs.BoolVar(&force, "force", false, "kill the container if it runs")
	fs.BoolVar(&force, "f", false, "kill the container if it runs")
	if err := parse(fs, args); err != nil {
		return 2, err
	}
	id, err := needID(fs)
	if err != nil {
		return 2, err
	}
	return 0, rt.Delete(ctx, id, force)
}

func cmdList(ctx context.Context, g *globals, rt *runtime.Runtime, args []string) (int, error) {
	fs := flag.NewFlagSet("list", flag.ContinueOnError)
	var quiet bool
	var format string
	fs.BoolVar(&quiet, "quiet", false, "ids only")
	fs.BoolVar(&quiet, "q", false, "ids only")
	fs.StringVar(&format, "format", "table", "table or json")
	fs.StringVar(&format, "f", "table", "table or json")
	if err := parse(fs, args); err != nil {
		return 2, err
	}
	list, err := rt.List(ctx)
	if err != nil {
		return 1, err
	}
	switch {
	case quiet:
		for _, c := range list {
			fmt.Println(c.ID)
		}
	case format == "json":
		type item struct {
			OCIVersion  string            `json:"ociVersion"`
			ID          string            `json:"id"`
			Pid         int               `json:"pid"`
			Status      string            `json:"status"`
			Bundle      string            `json:"bundle"`
			Created     time.Time         `json:"created"`
			Owner       string            `json:"owner"`
			Annotations map[string]string `json:"annotations,omitempty"`
		}
		out := []item{}
		for _, c := range list {
			out = append(out, item{c.Version, c.ID, c.Pid, string(c.Status), c.Bundle, c.Created, c.Owner, c.Annotations})
		}
		b, _ := json.Marshal(out)
		fmt.Println(string(b))
	case format == "table":
		w := tabwriter.NewWriter(os.Stdout, 12, 1, 3, ' ', 0)
		fmt.Fprintln(w, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER")
		for _, c := range list {
			fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\n", c.ID, c.Pid, c.Status, c.Bundle, c.Created.Format(time.RFC3339Nano), c.Owner)
		}
		w.Flush()
	default:
		return 2, fmt.Errorf("list: --format %q: want table or json", format)
	}
	return 0, nil
}

func cmdPs(ctx context.Context, g *globals, rt *runtime.Runtime, args []string) (int, error) {
	fs := flag.NewFlagSet("ps", flag.ContinueOnError)
	var format string
	fs.StringVar(&format, "format", "table", "table or json")
	fs.StringVar(&format, "f", "table", "table or json")
	if err := parse(fs, args); err != nil {
		return 2, err
	}
	id, err := needID(fs)
	if err != nil {
		return 2, err
	}
	pids, err := rt.Ps(ctx, id)
	if err != nil {
		return 1, err
	}
	if format == "json" {
		if pids == nil {
			pids = []int{}
		}
		b, _ := json.Marshal(pids)
		fmt.Println(string(b))
		return 0, nil
	}
	psArgs := fs.Args()[1:]
	if len(psArgs) == 0 {
		psArgs = []string{"-ef"}
	}
	out, err := exec.Command("ps", psArgs...).Output()
	if err != nil {
		return 1, fmt.Errorf("ps: %w", err)
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	pidCol := -1
	for i, f := range strings.Fields(lines[0]) {
		if f == "PID" {
			pidCol = i
		}
	}
	if pidCol < 0 {
		return 1, fmt.Errorf("ps: no PID column in the output of ps %s", strings.Join(psArgs, " "))
	}
	in := map[int]bool{}
	for _, p := range pids {
		in[p] = true
	}
	fmt.Println(lines[0])
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) > pidCol {
			if p, err := strconv.Atoi(f[pidCol]); err == nil && in[p] {
				fmt.Println(l)
			}
		}
	}
	return 0, nil
}

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(s string) error { *m = append(*m, s); return nil }

func cmdExec(ctx context.Context, g *globals, rt *runtime.Runtime, args []string) (int, error) {
	fs := flag.NewFlagSet("exec", flag.ContinueOnError)
	var processFile, console, pidFile, cwd, user string
	var tty, detach, noNewPrivs bool
	var env, caps, gids multi
	var preserve int
	fs.StringVar(&processFile, "process", "", "process.json")
	fs.StringVar(&processFile, "p", "", "process.json")
	fs.StringVar(&console, "console-socket", "", "unix socket receiving the pty master")
	fs.StringVar(&pidFile, "pid-file", "", "write the process pid here")
	fs.StringVar(&cwd, "cwd", "", "working directory")
	fs.StringVar(&user, "user", "", "uid[:gid]")
	fs.StringVar(&user, "u", "", "uid[:gid]")
	fs.BoolVar(&tty, "tty", false, "allocate a pty")
	fs.BoolVar(&tty, "t", false, "allocate a pty")
	fs.BoolVar(&detach, "detach", false, "do not wait")
	fs.BoolVar(&detach, "d", false, "do not wait")
	fs.BoolVar(&noNewPrivs, "no-new-privs", false, "set no_new_privs")
	fs.Var(&env, "env", "KEY=VALUE")
	fs.Var(&env, "e", "KEY=VALUE")
	fs.Var(&caps, "cap", "add a capability")
	fs.Var(&caps, "c", "add a capability")
	fs.Var(&gids, "additional-gids", "additional gid")
	fs.Var(&gids, "g", "additional gid")
	fs.IntVar(&preserve, "preserve-fds", 0, "pass fds 3..3+N-1")
	fs.String("process-label", "", "ignored (no SELinux)")
	fs.String("apparmor", "", "ignored (no AppArmor)")
	if err := parse(fs, args); err != nil {
		return 2, err
	}
	id, err := needID(fs)
	if err != nil {
		return 2, err
	}
	var proc *specs.Process
	if processFile != "" {
		b, err := os.ReadFile(processFile)
		if err != nil {
			return 1, err
		}
		proc = new(specs.Process)
		if err := json.Unmarshal(b, proc); err != nil {
			return 1, fmt.Errorf("exec: --process %s: %w", processFile, err)
		}
	} else {
		if fs.NArg() < 2 {
			return 2, fmt.Errorf("exec: no command given")
		}
		base, err := rt.ProcessTemplate(ctx, id)
		if err != nil {
			return 1, err
		}
		proc = base
		proc.Args = fs.Args()[1:]
		proc.Terminal = tty
		if cwd != "" {
			proc.Cwd = cwd
		}
		proc.Env = append(proc.Env, env...)
		if user != "" {
			u, gs, _ := strings.Cut(user, ":")
			uid, err := strconv.ParseUint(u, 10, 32)
			if err != nil {
				return 2, fmt.Errorf("exec: --user %q: want uid[:gid]", user)
			}
			proc.User.UID = uint32(uid)
			if gs != "" {
				gid, err := strconv.ParseUint(gs, 10, 32)
				if err != nil {
					return 2, fmt.Errorf("exec: --user %q: want uid[:gid]", user)
				}
				proc.User.GID = uint32(gid)
			}
		}
		for _, gstr := range gids {
			gid, err := strconv.ParseUint(gstr, 10, 32)
			if err != nil {
				return 2, fmt.Errorf("exec: --additional-gids %q", gstr)
			}
			proc.User.AdditionalGids = append(proc.User.AdditionalGids, uint32(gid))
		}
		if noNewPrivs {
			proc.NoNewPrivileges = true
		}
		if len(caps) > 0 {
			if proc.Capabilities == nil {
				proc.Capabilities = &specs.LinuxCapabilities{}
			}
			pc := proc.Capabilities
			for _, c := range caps {
				c = strings.ToUpper(c)
				if !strings.HasPrefix(c, "CAP_") {
					c = "CAP_" + c
				}
				pc.Bounding = append(pc.Bounding, c)
				pc.Effective = append(pc.Effective, c)
				pc.Permitted = append(pc.Permitted, c)
			}
		}
	}
	o := &runtime.ExecOpts{ConsoleSocket: console, PidFile: pidFile, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
	for i := 0; i < preserve; i++ {
		o.ExtraFiles = append(o.ExtraFiles, os.NewFile(uintptr(3+i), "preserved"))
	}
	var relay *ttyRelay
	if !detach {
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			return 1, err
		}
		if proc.Terminal && console == "" {
			relay = &ttyRelay{}
			o.OnConsole = relay.attach
		}
	} else if proc.Terminal && console == "" {
		return 2, fmt.Errorf("exec: -t with -d needs --console-socket")
	}
	sigs := make(chan os.Signal, 64)
	if !detach {
		signal.Notify(sigs)
	}
	p, err := rt.Exec(ctx, id, proc, o)
	if err != nil {
		return 1, err
	}
	if detach {
		return 0, nil
	}
	if relay != nil {
		relay.start()
		defer relay.restore()
	}
	code := waitForwarding(p.Pid, sigs, func(sig unix.Signal) { _ = unix.Kill(p.Pid, sig) }, relay)
	if relay != nil {
		relay.drain()
	}
	return code, nil
}

func cmdPause(ctx context.Context, g *globals, rt *runtime.Runtime, args []string) (int, error) {
	fs := flag.NewFlagSet("pause", flag.ContinueOnError)
	if err := parse(fs, args); err != nil {
		return 2, err
	}
	id, err := needID(fs)
	if err != nil {
		return 2, err
	}
	return 0, rt.Pause(ctx, id)
}

func cmdResume(ctx context.Context, g *globals, rt *runtime.Runtime, args []string) (int, error) {
	fs := flag.NewFlagSet("resume", flag.ContinueOnError)
	if err := parse(fs, args); err != nil {
		return 2, err
	}
	id, err := needID(fs)
	if err != nil {
		return 2, err
	}
	return 0, rt.Resume(ctx, id)
}

func cmdUpdate(ctx context.Context, g *globals, rt *runtime.Runtime, args []string) (int, error) {
	fs := flag.NewFlagSet("update", flag.ContinueOnError)
	var file string
	fs.StringVar(&file, "resources", "", "resources JSON file, - for stdin")
	fs.StringVar(&file, "r", "", "resources JSON file, - for stdin")
	mem := fs.String("memory", "", "memory limit")
	memSwap := fs.String("memory-swap", "", "memory+swap limit")
	memRes := fs.String("memory-reservation", "", "memory soft limit")
	fs.String("kernel-memory", "", "ignored")
	fs.String("kernel-memory-tcp", "", "ignored")
	shares := fs.String("cpu-shares", "", "cpu shares")
	quota := fs.String("cpu-quota", "", "cpu quota (us)")
	period := fs.String("cpu-period", "", "cpu period (us)")
	rtRuntime := fs.String("cpu-rt-runtime", "", "cpu rt runtime (us)")
	rtPeriod := fs.String("cpu-rt-period", "", "cpu rt period (us)")
	cpus := fs.String("cpuset-cpus", "", "cpus")
	mems := fs.String("cpuset-mems", "", "memory nodes")
	pids := fs.String("pids-limit", "", "max processes")
	weight := fs.String("blkio-weight", "", "blkio weight")
	if err := parse(fs, args); err != nil {
		return 2, err
	}
	id, err := needID(fs)
	if err != nil {
		return 2, err
	}
	res := &specs.LinuxResources{}
	if file != "" {
		var r io.Reader = os.Stdin
		if file != "-" {
			f, err := os.Open(file)
			if err != nil {
				return 1, err
			}
			defer f.Close()
			r = f
		}
		if err := json.NewDecoder(r).Decode(res); err != nil {
			return 1, fmt.Errorf("update: resources: %w", err)
		}
	} else {
		i64 := func(name, s string) (*int64, error) {
			if s == "" {
				return nil, nil
			}
			v, err := parseSize(s)
			if err != nil {
				return nil, fmt.Errorf("update: --%s %q: %w", name, s, err)
			}
			return &v, nil
		}
		u64 := func(name, s string) (*uint64, error) {
			p, err := i64(name, s)
			if p == nil || err != nil {
				return nil, err
			}
			v := uint64(*p)
			return &v, nil
		}
		res.Memory = &specs.LinuxMemory{}
		res.CPU = &specs.LinuxCPU{Cpus: *cpus, Mems: *mems}
		var errs []error
		var e error
		res.Memory.Limit, e = i64("memory", *mem)
		errs = append(errs, e)
		res.Memory.Swap, e = i64("memory-swap", *memSwap)
		errs = append(errs, e)
		res.Memory.Reservation, e = i64("memory-reservation", *memRes)
		errs = append(errs, e)
		res.CPU.Shares, e = u64("cpu-shares", *shares)
		errs = append(errs, e)
		res.CPU.Quota, e = i64("cpu-quota", *quota)
		errs = append(errs, e)
		res.CPU.Period, e = u64("cpu-period", *period)
		errs = append(errs, e)
		res.CPU.RealtimeRuntime, e = i64("cpu-rt-runtime", *rtRuntime)
		errs = append(errs, e)
		res.CPU.RealtimePeriod, e = u64("cpu-rt-period", *rtPeriod)
		errs = append(errs, e)
		if p, err := i64("pids-limit", *pids); err != nil {
			errs = append(errs, err)
		} else if p != nil {
			res.Pids = &specs.LinuxPids{Limit: p}
		}
		if w, err := i64("blkio-weight", *weight); err != nil {
			errs = append(errs, err)
		} else if w != nil {
			v := uint16(*w)
			res.BlockIO = &specs.LinuxBlockIO{Weight: &v}
		}
		for _, e := range errs {
			if e != nil {
				return 2, e
			}
		}
	}
	return 0, rt.Update(ctx, id, res)
}

// parseSize accepts plain numbers and k/m/g suffixes (binary units, as runc).
func parseSize(s string) (int64, error) {
	mult := int64(1)
	ls := strings.ToLower(strings.TrimSpace(s))
	for _, u := range []struct {
		suf string
		m   int64
	}{{"kb", 1 << 10}, {"mb", 1 << 20}, {"gb", 1 << 30}, {"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"b", 1}} {
		if strings.HasSuffix(ls, u.suf) {
			ls, mult = strings.TrimSuffix(ls, u.suf), u.m
			break
		}
	}
	v, err := strconv.ParseInt(ls, 10, 64)
	if err != nil {
		return 0, err
	}
	if v < 0 {
		return v, nil
	}
	return v * mult, nil
}

func cmdEvents(ctx context.Context, g *globals, rt *runtime.Runtime, args []string) (int, error) {
	fs := flag.NewFlagSet("events", flag.ContinueOnError)
	var stats bool
	var interval time.Duration
	fs.BoolVar(&stats, "stats", false, "print stats once and exit")
	fs.DurationVar(&interval, "interval", 5*time.Second, "stats interval")
	if err := parse(fs, args); err != nil {
		return 2, err
	}
	id, err := needID(fs)
	if err != nil {
		return 2, err
	}
	enc := json.NewEncoder(os.Stdout)
	type event struct {
		Type string `json:"type"`
		ID   string `json:"id"`
		Data any    `json:"data,omitempty"`
	}
	emit := func() error {
		s, err := rt.Stats(ctx, id)
		if err != nil {
			return err
		}
		return enc.Encode(event{"stats", id, s})
	}
	if stats {
		return 0, emit()
	}
	var lastOOM uint64
	for {
		if err := emit(); err != nil {
			return 1, err
		}
		if n, err := rt.OOMKills(ctx, id); err == nil && n > lastOOM {
			lastOOM = n
			_ = enc.Encode(event{Type: "oom", ID: id})
		}
		time.Sleep(interval)
	}
}
