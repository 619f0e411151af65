// Package oneproc runs the CLI on one P (GOMAXPROCS=1) unless the user set
// GOMAXPROCS. It is its own package, imported first by cmd/berth, so that
// its init runs before the rest of the CLI's package initialisation.
//
// Why: the CLI spends its short life waiting on the daemon. With a second P
// the Go runtime wakes spinning threads whenever a goroutine becomes
// runnable (netpoll, timers), and each thread costs a clone, stacks and an
// exit. On a busy host (50 parallel `berth run -d`) that was about an
// eighth of the CLI's CPU time. Copies of data (cp, save, load) are bound by
// I/O, not by a second core.
package oneproc

import (
	"runtime"
	"syscall"
)

func init() {
	if _, set := syscall.Getenv("GOMAXPROCS"); !set {
		runtime.GOMAXPROCS(1)
	}
}
