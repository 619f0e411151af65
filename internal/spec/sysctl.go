package spec

import (
	"strings"
)

// ipcSysctls are the namespaced IPC sysctls (the kernel's ipc namespace
// covers them; docker's and runc's allow-lists agree).
var ipcSysctls = map[string]bool{
	"kernel.msgmax": true, "kernel.msgmnb": true, "kernel.msgmni": true,
	"kernel.sem": true, "kernel.shmall": true, "kernel.shmmax": true,
	"kernel.shmmni": true, "kernel.shm_rmid_forced": true,
}

// checkSysctl applies docker's allow-list: only sysctls the kernel
// namespaces, and only when the container owns that namespace.
func (g *gen) checkSysctl(k string) error {
	switch {
	case ipcSysctls[k] || strings.HasPrefix(k, "fs.mqueue."):
		if isHost(g.ipcMode()) {
			return invalidf("sysctl %s is not allowed in the host's IPC namespace", k)
		}
		return nil
	case strings.HasPrefix(k, "net."):
		if !g.netPrivate() {
			return invalidf("sysctl %s is not allowed in the host's or another container's network namespace", k)
		}
		return nil
	case k == "kernel.domainname" || k == "kernel.hostname":
		if isHost(g.o.UTSMode) {
			return invalidf("sysctl %s is not allowed in the host's UTS namespace", k)
		}
		return nil
	}
	return invalidf("sysctl %s is not allowed", k)
}

// sysctls adds docker's defaults for a private network namespace (ping
// without CAP_NET_RAW, low ports without CAP_NET_BIND_SERVICE, IPv6 off
// unless a network gives it), the domainname, then the user's sysctls,
// which win.
func (g *gen) sysctls() error {
	o := g.o
	m := make(map[string]string, 2+len(o.Sysctls))
	if g.netPrivate() {
		// Setting ping_group_range fails inside a user namespace.
		if !g.userNS {
			m["net.ipv4.ping_group_range"] = "0 2147483647"
		}
		if kernelAtLeast(o.Host.Kernel, 4, 11) {
			m["net.ipv4.ip_unprivileged_port_start"] = "0"
		}
		// "all" reaches lo, "default" and every interface already there.
		if o.Host.IPv6 && !o.IPv6 {
			m["net.ipv6.conf.all.disable_ipv6"] = "1"
		}
	}
	if o.Domainname != "" && !isHost(o.UTSMode) {
		m["kernel.domainname"] = o.Domainname
	}
	for k, v := range o.Sysctls {
		if err := g.checkSysctl(k); err != nil {
			return err
		}
		m[k] = v
	}
	g.s.Linux.Sysctl = m
	return nil
}
