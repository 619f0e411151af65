// Command berthd is the berth daemon. Users start it as `berth daemon`:
// the berth CLI execs this binary, found beside it, with the same
// arguments. The daemon lives in its own binary so that the CLI, started
// for every command, links none of the daemon, network and runtime code
// (and no cgo): on the VMs we measure, each page a process touches at
// start costs ~20 µs, and the CLI's start is on the path of every `run`.
package main

import (
	"os"

	"golang.org/x/sys/unix"
)

func main() {
	// dockerd's umask, set once before any goroutine makes files: the
	// files and directories the daemon makes for containers (mount points,
	// etc files, the init layer's /etc) must not depend on the umask it was
	// started with, and the API socket is born 0755 (nobody else can
	// connect) until api.Listen gives it its group and mode.
	unix.Umask(0o022)
	args := os.Args[1:]
	// `berthd daemon [flags]` is accepted too, so that scripts written
	// for `berth daemon` work with either binary.
	if len(args) > 0 && args[0] == "daemon" {
		args = args[1:]
	}
	stop := startProfiles()
	code := runDaemon(args)
	stop()
	os.Exit(code)
}
