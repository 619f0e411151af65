// Command berth is the container engine: the docker-like CLI, the daemon
// ("berth daemon") and, when invoked as berth-runtime, the OCI runtime.
package main

import (
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/internal/cli"
)

func main() {
	if filepath.Base(os.Args[0]) == "berth-runtime" {
		os.Exit(runtimeMain(os.Args))
	}
	if len(os.Args) > 1 && os.Args[1] == "daemon" {
		stop := startProfiles()
		code := runDaemon(os.Args[2:])
		stop()
		os.Exit(code)
	}
	os.Exit(cli.Main(os.Args[1:]))
}
