// Command berth is the docker-like CLI. `berth daemon` runs the daemon,
// which is the berthd binary installed beside berth (see cmd/berthd).
package main

import (
	"fmt"
	"os"
	"syscall"

	// First: the CLI's package inits run on one P.
	_ "github.com/berth-dev/berth/cmd/berth/oneproc"

	"github.com/berth-dev/berth/internal/cli"
)

func main() {
	cli.RunDaemon = execDaemon
	if len(os.Args) > 1 && os.Args[1] == "daemon" {
		os.Exit(execDaemon(os.Args[2:]))
	}
	os.Exit(cli.Main(os.Args[1:]))
}

// execDaemon replaces this process with berthd, so that `berth daemon`
// is the daemon process itself (its pid, signals and exit status).
func execDaemon(args []string) int {
	path, err := daemonBinary()
	if err != nil {
		fmt.Fprintln(os.Stderr, "berth daemon:", err)
		return 1
	}
	err = syscall.Exec(path, append([]string{path}, args...), os.Environ())
	fmt.Fprintf(os.Stderr, "berth daemon: exec %s: %v\n", path, err)
	return 1
}
