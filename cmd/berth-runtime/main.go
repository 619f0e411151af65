// Command berth-runtime is berth's OCI runtime alone, runc-compatible. It is
// kept small: the container init runs a protected clone of this binary
// (CVE-2019-5736), and less code means a faster start.
//
// containermaxprocs=0: the runtime does not size GOMAXPROCS from the cgroup's
// CPU limit, which costs reading /proc/self/cgroup, mountinfo and cpu.max
// at every start of a process that lives for milliseconds.
//
//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0
package main

import (
	"os"
	goruntime "runtime"
	"runtime/debug"

	"github.com/berth-dev/berth/internal/runtimecli"
)

func main() {
	// a runtime command lives for milliseconds: collecting garbage only
	// costs time
	debug.SetGCPercent(-1)
	// its work is sequential: with one P no idle thread spins for work
	// beside the container init starting on the other CPU (berth-monitor
	// sets GOMAXPROCS=1 in the environment too, which also saves the
	// threads the runtime starts before main)
	goruntime.GOMAXPROCS(1)
	os.Exit(runtimecli.Main(os.Args))
}
