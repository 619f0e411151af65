// Command berthd is the berth daemon. Users start it as `berth daemon`:
// the berth CLI execs this binary, found beside it, with the same
// arguments. The daemon lives in its own binary so that the CLI, started
// for every command, links none of the daemon, network and runtime code
// (and no cgo): on the VMs we measure, each page a process touches at
// start costs ~20 µs, and the CLI's start is on the path of every `run`.
package main

import "os"

func main() {
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
