package runtime

import (
	"bytes"
	"encoding/json"
	"os"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// fastSpec decodes config.json without reflection over specs.Spec: in a
// short-lived process encoding/json's first decode of that type builds
// field caches for some fifty struct types, which costs milliseconds at
// every create (more than the rest of the parsing by far). The document is
// decoded generically and mapped by hand. Any key, type or value the
// mapping does not know exactly (or a null) makes it give up (ok false):
// the caller then decodes with encoding/json as before, so the result and
// the error messages never differ. Key matching is exact; encoding/json's
// case-insensitive matches take the slow path.
func fastSpec(b []byte) (s *specs.Spec, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil || len(bytes.TrimSpace(b[dec.InputOffset():])) > 0 {
		return nil, false
	}
	d := &jd{ok: true}
	s = d.spec(v)
	return s, d.ok
}

type jd struct{ ok bool }

func (d *jd) obj(v any) map[string]any {
	m, ok := v.(map[string]any)
	if !ok {
		d.ok = false
	}
	return m
}

func (d *jd) arr(v any) []any {
	a, ok := v.([]any)
	if !ok {
		d.ok = false
	}
	return a
}

func (d *jd) str(v any) string {
	s, ok := v.(string)
	if !ok {
		d.ok = false
	}
	return s
}

func (d *jd) boolean(v any) bool {
	b, ok := v.(bool)
	if !ok {
		d.ok = false
	}
	return b
}

func (d *jd) u64(v any, bits int) uint64 {
	n, ok := v.(json.Number)
	if !ok {
		d.ok = false
		return 0
	}
	x, err := strconv.ParseUint(string(n), 10, bits)
	if err != nil {
		d.ok = false
	}
	return x
}

func (d *jd) i64(v any, bits int) int64 {
	n, ok := v.(json.Number)
	if !ok {
		d.ok = false
		return 0
	}
	x, err := strconv.ParseInt(string(n), 10, bits)
	if err != nil {
		d.ok = false
	}
	return x
}

func (d *jd) strs(v any) []string {
	a := d.arr(v)
	out := make([]string, 0, len(a))
	for _, e := range a {
		out = append(out, d.str(e))
	}
	return out
}

func (d *jd) smap(v any) map[string]string {
	m := d.obj(v)
	out := make(map[string]string, len(m))
	for k, e := range m {
		out[k] = d.str(e)
	}
	return out
}

func (d *jd) u32s(v any) []uint32 {
	a := d.arr(v)
	out := make([]uint32, 0, len(a))
	for _, e := range a {
		out = append(out, uint32(d.u64(e, 32)))
	}
	return out
}

func (d *jd) spec(v any) *specs.Spec {
	s := &specs.Spec{}
	for k, e := range d.obj(v) {
		switch k {
		case "ociVersion":
			s.Version = d.str(e)
		case "process":
			s.Process = d.process(e)
		case "root":
			s.Root = &specs.Root{}
			for k, e := range d.obj(e) {
				switch k {
				case "path":
					s.Root.Path = d.str(e)
				case "readonly":
					s.Root.Readonly = d.boolean(e)
				default:
					d.ok = false
				}
			}
		case "hostname":
			s.Hostname = d.str(e)
		case "domainname":
			s.Domainname = d.str(e)
		case "mounts":
			a := d.arr(e)
			s.Mounts = make([]specs.Mount, 0, len(a))
			for _, e := range a {
				var m specs.Mount
				for k, e := range d.obj(e) {
					switch k {
					case "destination":
						m.Destination = d.str(e)
					case "type":
						m.Type = d.str(e)
					case "source":
						m.Source = d.str(e)
					case "options":
						m.Options = d.strs(e)
					default:
						d.ok = false
					}
				}
				s.Mounts = append(s.Mounts, m)
			}
		case "hooks":
			s.Hooks = d.hooks(e)
		case "annotations":
			s.Annotations = d.smap(e)
		case "linux":
			s.Linux = d.linux(e)
		default:
			d.ok = false
		}
		if !d.ok {
			return nil
		}
	}
	return s
}

func (d *jd) process(v any) *specs.Process {
	p := &specs.Process{}
	for k, e := range d.obj(v) {
		switch k {
		case "terminal":
			p.Terminal = d.boolean(e)
		case "consoleSize":
			p.ConsoleSize = &specs.Box{}
			for k, e := range d.obj(e) {
				switch k {
				case "height":
					p.ConsoleSize.Height = uint(d.u64(e, 64))
				case "width":
					p.ConsoleSize.Width = uint(d.u64(e, 64))
				default:
					d.ok = false
				}
			}
		case "user":
			for k, e := range d.obj(e) {
				switch k {
				case "uid":
					p.User.UID = uint32(d.u64(e, 32))
				case "gid":
					p.User.GID = uint32(d.u64(e, 32))
				case "umask":
					u := uint32(d.u64(e, 32))
					p.User.Umask = &u
				case "additionalGids":
					p.User.AdditionalGids = d.u32s(e)
				case "username":
					p.User.Username = d.str(e)
				default:
					d.ok = false
				}
			}
		case "args":
			p.Args = d.strs(e)
		case "env":
			p.Env = d.strs(e)
		case "cwd":
			p.Cwd = d.str(e)
		case "capabilities":
			c := &specs.LinuxCapabilities{}
			for k, e := range d.obj(e) {
				switch k {
				case "bounding":
					c.Bounding = d.strs(e)
				case "effective":
					c.Effective = d.strs(e)
				case "inheritable":
					c.Inheritable = d.strs(e)
				case "permitted":
					c.Permitted = d.strs(e)
				case "ambient":
					c.Ambient = d.strs(e)
				default:
					d.ok = false
				}
			}
			p.Capabilities = c
		case "rlimits":
			a := d.arr(e)
			p.Rlimits = make([]specs.POSIXRlimit, 0, len(a))
			for _, e := range a {
				var r specs.POSIXRlimit
				for k, e := range d.obj(e) {
					switch k {
					case "type":
						r.Type = d.str(e)
					case "hard":
						r.Hard = d.u64(e, 64)
					case "soft":
						r.Soft = d.u64(e, 64)
					default:
						d.ok = false
					}
				}
				p.Rlimits = append(p.Rlimits, r)
			}
		case "noNewPrivileges":
			p.NoNewPrivileges = d.boolean(e)
		case "apparmorProfile":
			p.ApparmorProfile = d.str(e)
		case "oomScoreAdj":
			n := int(d.i64(e, 64))
			p.OOMScoreAdj = &n
		case "selinuxLabel":
			p.SelinuxLabel = d.str(e)
		default:
			d.ok = false
		}
	}
	return p
}

func (d *jd) hooks(v any) *specs.Hooks {
	h := &specs.Hooks{}
	list := func(v any) []specs.Hook {
		a := d.arr(v)
		out := make([]specs.Hook, 0, len(a))
		for _, e := range a {
			var hk specs.Hook
			for k, e := range d.obj(e) {
				switch k {
				case "path":
					hk.Path = d.str(e)
				case "args":
					hk.Args = d.strs(e)
				case "env":
					hk.Env = d.strs(e)
				case "timeout":
					n := int(d.i64(e, 64))
					hk.Timeout = &n
				default:
					d.ok = false
				}
			}
			out = append(out, hk)
		}
		return out
	}
	for k, e := range d.obj(v) {
		switch k {
		case "prestart":
			//lint:ignore SA1019 prestart is deprecated but still honoured
			h.Prestart = list(e)
		case "createRuntime":
			h.CreateRuntime = list(e)
		case "createContainer":
			h.CreateContainer = list(e)
		case "startContainer":
			h.StartContainer = list(e)
		case "poststart":
			h.Poststart = list(e)
		case "poststop":
			h.Poststop = list(e)
		default:
			d.ok = false
		}
	}
	return h
}

func (d *jd) idmaps(v any) []specs.LinuxIDMapping {
	a := d.arr(v)
	out := make([]specs.LinuxIDMapping, 0, len(a))
	for _, e := range a {
		var m specs.LinuxIDMapping
		for k, e := range d.obj(e) {
			switch k {
			case "containerID":
				m.ContainerID = uint32(d.u64(e, 32))
			case "hostID":
				m.HostID = uint32(d.u64(e, 32))
			case "size":
				m.Size = uint32(d.u64(e, 32))
			default:
				d.ok = false
			}
		}
		out = append(out, m)
	}
	return out
}

func (d *jd) linux(v any) *specs.Linux {
	l := &specs.Linux{}
	for k, e := range d.obj(v) {
		switch k {
		case "uidMappings":
			l.UIDMappings = d.idmaps(e)
		case "gidMappings":
			l.GIDMappings = d.idmaps(e)
		case "sysctl":
			l.Sysctl = d.smap(e)
		case "resources":
			l.Resources = d.resources(e)
		case "cgroupsPath":
			l.CgroupsPath = d.str(e)
		case "namespaces":
			a := d.arr(e)
			l.Namespaces = make([]specs.LinuxNamespace, 0, len(a))
			for _, e := range a {
				var ns specs.LinuxNamespace
				for k, e := range d.obj(e) {
					switch k {
					case "type":
						ns.Type = specs.LinuxNamespaceType(d.str(e))
					case "path":
						ns.Path = d.str(e)
					default:
						d.ok = false
					}
				}
				l.Namespaces = append(l.Namespaces, ns)
			}
		case "devices":
			a := d.arr(e)
			l.Devices = make([]specs.LinuxDevice, 0, len(a))
			for _, e := range a {
				var dv specs.LinuxDevice
				for k, e := range d.obj(e) {
					switch k {
					case "path":
						dv.Path = d.str(e)
					case "type":
						dv.Type = d.str(e)
					case "major":
						dv.Major = d.i64(e, 64)
					case "minor":
						dv.Minor = d.i64(e, 64)
					case "fileMode":
						m := os.FileMode(d.u64(e, 32))
						dv.FileMode = &m
					case "uid":
						u := uint32(d.u64(e, 32))
						dv.UID = &u
					case "gid":
						g := uint32(d.u64(e, 32))
						dv.GID = &g
					default:
						d.ok = false
					}
				}
				l.Devices = append(l.Devices, dv)
			}
		case "seccomp":
			l.Seccomp = d.seccomp(e)
		case "rootfsPropagation":
			l.RootfsPropagation = d.str(e)
		case "maskedPaths":
			l.MaskedPaths = d.strs(e)
		case "readonlyPaths":
			l.ReadonlyPaths = d.strs(e)
		case "mountLabel":
			l.MountLabel = d.str(e)
		case "timeOffsets":
			m := d.obj(e)
			l.TimeOffsets = make(map[string]specs.LinuxTimeOffset, len(m))
			for clock, e := range m {
				var o specs.LinuxTimeOffset
				for k, e := range d.obj(e) {
					switch k {
					case "secs":
						o.Secs = d.i64(e, 64)
					case "nanosecs":
						o.Nanosecs = uint32(d.u64(e, 32))
					default:
						d.ok = false
					}
				}
				l.TimeOffsets[clock] = o
			}
		default:
			d.ok = false
		}
	}
	return l
}

func (d *jd) pi64(e any) *int64  { n := d.i64(e, 64); return &n }
func (d *jd) pu64(e any) *uint64 { n := d.u64(e, 64); return &n }

func (d *jd) resources(v any) *specs.LinuxResources {
	r := &specs.LinuxResources{}
	for k, e := range d.obj(v) {
		switch k {
		case "devices":
			a := d.arr(e)
			r.Devices = make([]specs.LinuxDeviceCgroup, 0, len(a))
			for _, e := range a {
				var c specs.LinuxDeviceCgroup
				for k, e := range d.obj(e) {
					switch k {
					case "allow":
						c.Allow = d.boolean(e)
					case "type":
						c.Type = d.str(e)
					case "major":
						c.Major = d.pi64(e)
					case "minor":
						c.Minor = d.pi64(e)
					case "access":
						c.Access = d.str(e)
					default:
						d.ok = false
					}
				}
				r.Devices = append(r.Devices, c)
			}
		case "memory":
			m := &specs.LinuxMemory{}
			for k, e := range d.obj(e) {
				switch k {
				case "limit":
					m.Limit = d.pi64(e)
				case "reservation":
					m.Reservation = d.pi64(e)
				case "swap":
					m.Swap = d.pi64(e)
				case "kernel":
					//lint:ignore SA1019 still decoded, as encoding/json does
					m.Kernel = d.pi64(e)
				case "kernelTCP":
					m.KernelTCP = d.pi64(e)
				case "swappiness":
					m.Swappiness = d.pu64(e)
				case "disableOOMKiller":
					b := d.boolean(e)
					m.DisableOOMKiller = &b
				default:
					d.ok = false
				}
			}
			r.Memory = m
		case "cpu":
			c := &specs.LinuxCPU{}
			for k, e := range d.obj(e) {
				switch k {
				case "shares":
					c.Shares = d.pu64(e)
				case "quota":
					c.Quota = d.pi64(e)
				case "period":
					c.Period = d.pu64(e)
				case "realtimeRuntime":
					c.RealtimeRuntime = d.pi64(e)
				case "realtimePeriod":
					c.RealtimePeriod = d.pu64(e)
				case "cpus":
					c.Cpus = d.str(e)
				case "mems":
					c.Mems = d.str(e)
				default:
					d.ok = false
				}
			}
			r.CPU = c
		case "pids":
			p := &specs.LinuxPids{}
			for k, e := range d.obj(e) {
				switch k {
				case "limit":
					p.Limit = d.pi64(e)
				default:
					d.ok = false
				}
			}
			r.Pids = p
		case "blockIO":
			b := &specs.LinuxBlockIO{}
			for k, e := range d.obj(e) {
				switch k {
				case "weight":
					w := uint16(d.u64(e, 16))
					b.Weight = &w
				default:
					d.ok = false // device lists: the slow path
				}
			}
			r.BlockIO = b
		case "unified":
			r.Unified = d.smap(e)
		default:
			d.ok = false
		}
	}
	return r
}

func (d *jd) seccomp(v any) *specs.LinuxSeccomp {
	s := &specs.LinuxSeccomp{}
	for k, e := range d.obj(v) {
		switch k {
		case "defaultAction":
			s.DefaultAction = specs.LinuxSeccompAction(d.str(e))
		case "defaultErrnoRet":
			n := uint(d.u64(e, 64))
			s.DefaultErrnoRet = &n
		case "architectures":
			for _, a := range d.strs(e) {
				s.Architectures = append(s.Architectures, specs.Arch(a))
			}
			if s.Architectures == nil {
				s.Architectures = []specs.Arch{}
			}
		case "flags":
			for _, f := range d.strs(e) {
				s.Flags = append(s.Flags, specs.LinuxSeccompFlag(f))
			}
			if s.Flags == nil {
				s.Flags = []specs.LinuxSeccompFlag{}
			}
		case "listenerPath":
			s.ListenerPath = d.str(e)
		case "listenerMetadata":
			s.ListenerMetadata = d.str(e)
		case "syscalls":
			a := d.arr(e)
			s.Syscalls = make([]specs.LinuxSyscall, 0, len(a))
			for _, e := range a {
				var sc specs.LinuxSyscall
				for k, e := range d.obj(e) {
					switch k {
					case "names":
						sc.Names = d.strs(e)
					case "action":
						sc.Action = specs.LinuxSeccompAction(d.str(e))
					case "errnoRet":
						n := uint(d.u64(e, 64))
						sc.ErrnoRet = &n
					case "args":
						aa := d.arr(e)
						sc.Args = make([]specs.LinuxSeccompArg, 0, len(aa))
						for _, e := range aa {
							var arg specs.LinuxSeccompArg
							for k, e := range d.obj(e) {
								switch k {
								case "index":
									arg.Index = uint(d.u64(e, 64))
								case "value":
									arg.Value = d.u64(e, 64)
								case "valueTwo":
									arg.ValueTwo = d.u64(e, 64)
								case "op":
									arg.Op = specs.LinuxSeccompOperator(d.str(e))
								default:
									d.ok = false
								}
							}
							sc.Args = append(sc.Args, arg)
						}
					default:
						d.ok = false
					}
				}
				s.Syscalls = append(s.Syscalls, sc)
			}
		default:
			d.ok = false
		}
	}
	return s
}
