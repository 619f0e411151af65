package spec

import (
	"strconv"
	"strings"
)

// secOpts is the parsed --security-opt list.
type secOpts struct {
	noNewPrivileges bool
	seccomp         string // "", "unconfined", "builtin", JSON, or a path
	apparmor        string
	labels          []string // label=... values: user:x role:x type:x level:x disable
	unconfinedPaths bool     // systempaths=unconfined
}

// parseSecurityOpts follows moby's parseSecurityOpt, including its messages
// and the deprecated "key:value" form.
func parseSecurityOpts(opts []string, daemonNNP bool) (secOpts, error) {
	so := secOpts{noNewPrivileges: daemonNNP}
	for _, opt := range opts {
		switch opt {
		case "no-new-privileges":
			so.noNewPrivileges = true
			continue
		case "disable":
			so.labels = append(so.labels, "disable")
			continue
		}
		var k, v string
		var ok bool
		if strings.Contains(opt, "=") {
			k, v, ok = strings.Cut(opt, "=")
		} else if strings.Contains(opt, ":") {
			k, v, ok = strings.Cut(opt, ":")
		}
		if !ok {
			return so, invalidf("invalid --security-opt 1: %q", opt)
		}
		switch k {
		case "label":
			so.labels = append(so.labels, v)
		case "apparmor":
			so.apparmor = v
		case "seccomp":
			so.seccomp = v
		case "no-new-privileges":
			nnp, err := strconv.ParseBool(v)
			if err != nil {
				return so, invalidf("invalid --security-opt 2: %q", opt)
			}
			so.noNewPrivileges = nnp
		case "systempaths":
			if v != "unconfined" {
				return so, invalidf("invalid --security-opt 2: %q", opt)
			}
			so.unconfinedPaths = true
		default:
			return so, invalidf("invalid --security-opt 2: %q", opt)
		}
	}
	return so, nil
}

// lsm sets the AppArmor profile and SELinux labels. Asking for either on a
// host without it is an error rather than a silent downgrade.
func (g *gen) lsm() error {
	o, p := g.o, g.s.Process
	// Asking for no confinement is met on a host without the LSM, so
	// compose files with apparmor:unconfined or label:disable run anywhere.
	if a := g.sec.apparmor; a != "" && a != "unconfined" && !o.Host.AppArmor {
		return notImplementedf("AppArmor is not enabled on this host: cannot apply --security-opt apparmor=%s", a)
	}
	if o.Host.AppArmor {
		switch {
		case g.sec.apparmor != "":
			p.ApparmorProfile = g.sec.apparmor
		case o.Privileged:
			p.ApparmorProfile = "unconfined"
		default:
			p.ApparmorProfile = o.Daemon.AppArmorProfile
		}
	}

	if !o.Host.SELinux {
		for _, l := range g.sec.labels {
			if l != "disable" {
				return notImplementedf("SELinux is not enabled on this host: cannot apply --security-opt label=%s", l)
			}
		}
		return nil
	}
	if o.Privileged {
		return nil
	}
	// container-selinux's defaults; the daemon reserves the MCS level.
	user, role, typ, level := "system_u", "system_r", "container_t", o.SELinuxLevel
	for _, l := range g.sec.labels {
		if l == "disable" {
			return nil
		}
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			return invalidf("bad label option %q, valid options 'disable' or 'user, role, level, type, filetype' followed by ':' and a value", l)
		}
		switch k {
		case "user":
			user = v
		case "role":
			role = v
		case "type":
			typ = v
		case "level":
			level = v
		case "filetype":
		default:
			return invalidf("bad label option %q, valid options 'disable' or 'user, role, level, type, filetype' followed by ':' and a value", l)
		}
	}
	if level == "" {
		level = "s0"
	}
	p.SelinuxLabel = user + ":" + role + ":" + typ + ":" + level
	g.s.Linux.MountLabel = "system_u:object_r:container_file_t:" + level
	return nil
}
