package cgroups

import (
	"strings"
	"sync"
)

// hierarchy is one mounted v1 hierarchy as seen from this process.
type hierarchy struct {
	mount string // mount point, e.g. /sys/fs/cgroup/memory
	root  string // root of the mount inside the hierarchy (mountinfo field 4)
	self  string // our own cgroup in it (/proc/self/cgroup)
}

type hostInfo struct {
	v1 map[string]hierarchy // controller ("memory", "name=systemd") → hierarchy

	mountinfo string // as read

	unified     string // cgroup2 mount point, "" if none
	unifiedRoot string
	unifiedSelf string
}

var (
	hostOnce sync.Once
	host     *hostInfo
	hostErr  error
)

// hosts parses /proc/self/cgroup and /proc/self/mountinfo once per process:
// the layout does not change under a running runtime, and mountinfo is the
// largest file we read on the start path.
func hosts() (*hostInfo, error) {
	hostOnce.Do(func() {
		cg, err := readFile("/proc/self", "cgroup")
		if err != nil {
			hostErr = err
			return
		}
		mi, err := readFileHint("/proc/self", "mountinfo", 64<<10)
		if err != nil {
			hostErr = err
			return
		}
		host = parseHost(cg, mi)
		host.mountinfo = mi
	})
	return host, hostErr
}

// Mountinfo returns /proc/self/mountinfo as this package read it once, so
// that callers needing it too (the runtime's cgroup mounts) do not make
// the kernel render it again.
func Mountinfo() (string, error) {
	h, err := hosts()
	if err != nil {
		return "", err
	}
	return h.mountinfo, nil
}

// parseHost joins the two files: /proc/self/cgroup names the controllers of
// each hierarchy and our place in it ("4:memory:/a/b", "0::/" for v2);
// mountinfo says where each is mounted. The super options of a cgroup mount
// list its controllers ("rw,cpu,cpuacct" or "rw,name=systemd").
func parseHost(cgroupFile, mountinfo string) *hostInfo {
	h := &hostInfo{v1: map[string]hierarchy{}}
	self := map[string]string{} // controller → own path
	for _, line := range strings.Split(cgroupFile, "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[1] == "" {
			h.unifiedSelf = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			self[c] = parts[2]
		}
	}
	for _, line := range strings.Split(mountinfo, "\n") {
		// 31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
		sep := strings.Index(line, " - ")
		if sep < 0 {
			continue
		}
		pre := strings.Fields(line[:sep])
		post := strings.Fields(line[sep+3:])
		if len(pre) < 5 || len(post) < 3 {
			continue
		}
		root, mnt := unescape(pre[3]), unescape(pre[4])
		switch post[0] {
		case "cgroup2":
			if h.unified == "" {
				h.unified, h.unifiedRoot = mnt, root
			}
		case "cgroup":
			for _, opt := range strings.Split(post[2], ",") {
				own, ok := self[opt]
				if !ok {
					continue
				}
				if _, dup := h.v1[opt]; dup {
					continue // the first mount wins; later ones are usually binds
				}
				h.v1[opt] = hierarchy{mount: mnt, root: root, self: own}
			}
		}
	}
	return h
}

// unescape decodes mountinfo's octal escapes (\040 for a space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && s[i+1] >= '0' && s[i+1] <= '3' {
			v := (s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0')
			b.WriteByte(v)
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
