package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
)

// startProfiles writes pprof profiles of the daemon for bench/ when asked:
// BERTH_CPUPROFILE=file (CPU, from start to shutdown) and
// BERTH_MEMPROFILE=file (heap in use at shutdown, after a GC). Env vars
// rather than flags: they are for profiling runs only and stay out of
// `berth daemon --help`. The returned func stops and writes them.
func startProfiles() (stop func()) {
	cpu, mem := os.Getenv("BERTH_CPUPROFILE"), os.Getenv("BERTH_MEMPROFILE")
	var cpuFile *os.File
	if cpu != "" {
		f, err := os.Create(cpu)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "cpu profile:", err)
		} else {
			cpuFile = f
		}
	}
	return func() {
		if cpuFile != nil {
			pprof.StopCPUProfile()
			_ = cpuFile.Close()
		}
		if mem != "" {
			f, err := os.Create(mem)
			if err != nil {
				fmt.Fprintln(os.Stderr, "heap profile:", err)
				return
			}
			runtime.GC()
			_ = pprof.WriteHeapProfile(f)
			_ = f.Close()
		}
	}
}
