package spec

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// namespaces follows moby's WithNamespaces: start from docker's default list
// (mount, network, uts, pid, ipc), then user, then each mode replaces or
// removes its entry, and cgroup is appended when private.
func (g *gen) namespaces() error {
	o := g.o
	ns := make([]specs.LinuxNamespace, 0, 7)
	ns = append(ns,
		specs.LinuxNamespace{Type: specs.MountNamespace},
		specs.LinuxNamespace{Type: specs.NetworkNamespace},
		specs.LinuxNamespace{Type: specs.UTSNamespace},
		specs.LinuxNamespace{Type: specs.PIDNamespace},
		specs.LinuxNamespace{Type: specs.IPCNamespace},
	)
	set := func(n specs.LinuxNamespace) {
		for i := range ns {
			if ns[i].Type == n.Type {
				ns[i] = n
				return
			}
		}
		ns = append(ns, n)
	}
	remove := func(t specs.LinuxNamespaceType) {
		for i := range ns {
			if ns[i].Type == t {
				ns = append(ns[:i], ns[i+1:]...)
				return
			}
		}
	}
	// join sets a namespace path for container:<x>; under userns-remap the
	// container must also join x's user namespace.
	join := func(t specs.LinuxNamespaceType, ref string) error {
		p := o.NSPaths[t]
		if p == "" {
			return invalidf("cannot join %s namespace of container %s: no namespace path resolved", t, ref)
		}
		set(specs.LinuxNamespace{Type: t, Path: p})
		if g.userNS {
			up := o.NSPaths[specs.UserNamespace]
			if up == "" {
				return invalidf("cannot join user namespace of container %s: no namespace path resolved", ref)
			}
			set(specs.LinuxNamespace{Type: specs.UserNamespace, Path: up})
		}
		return nil
	}

	switch o.UsernsMode {
	case "", "host", "private":
	default:
		return invalidf("invalid USER mode: %v", o.UsernsMode)
	}
	if g.userNS {
		set(specs.LinuxNamespace{Type: specs.UserNamespace})
		g.s.Linux.UIDMappings = o.Daemon.UIDMappings
		g.s.Linux.GIDMappings = o.Daemon.GIDMappings
	}

	// network
	switch {
	case isHost(o.NetworkMode):
		remove(specs.NetworkNamespace)
	case o.NetworkMode == "none":
		set(specs.LinuxNamespace{Type: specs.NetworkNamespace})
	default:
		if ref, ok := containerRef(o.NetworkMode); ok {
			if err := join(specs.NetworkNamespace, ref); err != nil {
				return err
			}
		} else if len(o.NetworkMode) > len("container") && o.NetworkMode[:len("container:")] == "container:" {
			return invalidf("invalid network mode: %s", o.NetworkMode)
		} else {
			// bridge or a user network: the daemon may have created the
			// namespace already (to wire veths before start).
			set(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: o.NSPaths[specs.NetworkNamespace]})
		}
	}

	// ipc
	ipc := g.ipcMode()
	switch ipc {
	case "private", "shareable", "none":
		set(specs.LinuxNamespace{Type: specs.IPCNamespace})
	case "host":
		remove(specs.IPCNamespace)
	default:
		ref, ok := containerRef(ipc)
		if !ok {
			return invalidf("invalid IPC mode: %v", ipc)
		}
		if err := join(specs.IPCNamespace, ref); err != nil {
			return err
		}
	}

	// pid
	switch o.PidMode {
	case "":
		set(specs.LinuxNamespace{Type: specs.PIDNamespace})
	case "host":
		remove(specs.PIDNamespace)
	default:
		ref, ok := containerRef(o.PidMode)
		if !ok {
			return invalidf("invalid PID mode: %v", o.PidMode)
		}
		if err := join(specs.PIDNamespace, ref); err != nil {
			return err
		}
	}

	// uts
	switch o.UTSMode {
	case "":
	case "host":
		remove(specs.UTSNamespace)
		g.s.Hostname = ""
	default:
		return invalidf("invalid UTS mode: %v", o.UTSMode)
	}

	// cgroup
	cg, err := g.cgroupnsMode()
	if err != nil {
		return err
	}
	if cg == "private" {
		set(specs.LinuxNamespace{Type: specs.CgroupNamespace})
	}
	g.s.Linux.Namespaces = ns
	return nil
}

func (g *gen) ipcMode() string {
	if g.o.IpcMode != "" {
		return g.o.IpcMode
	}
	if g.o.Daemon.IpcMode != "" {
		return g.o.Daemon.IpcMode
	}
	return "private"
}

// cgroupnsMode is docker's default: private on cgroup v2, host on v1 (and for
// privileged containers on v1), unless the daemon or the container says.
func (g *gen) cgroupnsMode() (string, error) {
	o := g.o
	m := o.CgroupnsMode
	if m == "" {
		switch {
		case o.Privileged && !o.Host.CgroupV2:
			m = "host"
		case o.Daemon.CgroupnsMode != "":
			m = o.Daemon.CgroupnsMode
		case o.Host.CgroupV2:
			m = "private"
		default:
			m = "host"
		}
	}
	if m != "private" && m != "host" {
		return "", invalidf("invalid cgroup namespace mode: %v", m)
	}
	return m, nil
}

// netPrivate: the container gets a network namespace of its own (moby's
// NetworkMode.IsPrivate: neither host nor another container's).
func (g *gen) netPrivate() bool {
	if isHost(g.o.NetworkMode) {
		return false
	}
	_, joined := containerRef(g.o.NetworkMode)
	return !joined
}
