package seccomp

import (
	"fmt"
	"runtime"
	"sort"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// features records which seccomp flags and actions the running kernel has.
// Flag bits are the SECCOMP_FILTER_FLAG_* values; actions use bits 16 and up.
type features uint64

const (
	featKillProcess features = 1 << (16 + iota)
	featLog
	featNotify
)

var flagNames = map[uint32]string{
	flagTSYNC:            "SECCOMP_FILTER_FLAG_TSYNC",
	flagLog:              "SECCOMP_FILTER_FLAG_LOG",
	flagSpecAllow:        "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
	flagNewListener:      "SECCOMP_FILTER_FLAG_NEW_LISTENER",
	flagTSYNCESRCH:       "SECCOMP_FILTER_FLAG_TSYNC_ESRCH",
	flagWaitKillableRecv: "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
}

var actionFeature = map[uint32]struct {
	feat features
	name string
}{
	retKillProcess: {featKillProcess, "SCMP_ACT_KILL_PROCESS"},
	retLog:         {featLog, "SCMP_ACT_LOG"},
	retNotify:      {featNotify, "SCMP_ACT_NOTIFY"},
}

var kernelFeatures = sync.OnceValue(probe)

// probe asks the kernel, without installing anything: seccomp(SET_MODE_FILTER,
// flag, NULL) fails with EFAULT once the flag passed validation and EINVAL
// when the flag is unknown (libseccomp probes the same way), and
// SECCOMP_GET_ACTION_AVAIL answers for actions. When seccomp(2) itself is
// unavailable or filtered we cannot tell, assume everything, and let Load
// report the kernel's answer.
func probe() features {
	var f features
	for flag := range flagNames {
		extra := uint32(0)
		if flag == flagWaitKillableRecv {
			extra = flagNewListener // refused on its own
		}
		_, _, e := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, uintptr(flag|extra), 0)
		if e != unix.EINVAL {
			f |= features(flag)
		}
	}
	for ret, af := range actionFeature {
		a := ret
		_, _, e := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_GET_ACTION_AVAIL, 0, uintptr(unsafe.Pointer(&a)))
		if e != unix.EOPNOTSUPP {
			f |= af.feat
		}
	}
	return f
}

// check fails when c needs a flag or action the kernel lacks.
func (f features) check(c *compiled) error {
	var missing []string
	for flag, name := range flagNames {
		if c.flags&flag != 0 && f&features(flag) == 0 {
			missing = append(missing, name)
		}
	}
	for ret, af := range actionFeature {
		if c.used[ret] && f&af.feat == 0 {
			missing = append(missing, af.name)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	sort.Strings(missing)
	return fmt.Errorf("seccomp: %v: %w", missing, ErrUnsupported)
}

// Load installs p in the calling thread with seccomp(SECCOMP_SET_MODE_FILTER)
// and returns the listener fd when p.NeedsListener, else -1. The caller has
// locked the goroutine to its thread (runtime.LockOSThread) and set
// no_new_privs first, or holds CAP_SYS_ADMIN. With SECCOMP_FILTER_FLAG_TSYNC
// the filter also applies to every other thread of the process.
func Load(p *Program) (listenerFD int, err error) {
	if p == nil || len(p.Filter) == 0 {
		return -1, invalid("empty program")
	}
	if len(p.Filter) > unix.BPF_MAXINSNS {
		return -1, invalid("program of %d instructions exceeds %d", len(p.Filter), unix.BPF_MAXINSNS)
	}
	prog := unix.SockFprog{Len: uint16(len(p.Filter)), Filter: &p.Filter[0]}
	r, _, e := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, uintptr(p.Flags), uintptr(unsafe.Pointer(&prog)))
	runtime.KeepAlive(p)
	switch {
	case e == unix.EACCES:
		return -1, fmt.Errorf("seccomp: load filter: set no_new_privs first or hold CAP_SYS_ADMIN: %w", e)
	case e == unix.EINVAL:
		if err := kernelFeatures().check(&compiled{flags: p.Flags}); err != nil {
			return -1, err
		}
		return -1, fmt.Errorf("seccomp: load filter: kernel rejected the program or flags %#x: %w", p.Flags, e)
	case e == unix.ESRCH && p.Flags&flagTSYNC != 0:
		return -1, fmt.Errorf("seccomp: load filter: another thread could not be synchronized (TSYNC): %w", e)
	case e != 0:
		return -1, fmt.Errorf("seccomp: load filter: %w", e)
	}
	if p.NeedsListener {
		return int(r), nil
	}
	if p.Flags&flagTSYNC != 0 && r != 0 {
		return -1, fmt.Errorf("seccomp: load filter: thread %d could not be synchronized (TSYNC)", r)
	}
	return -1, nil
}
