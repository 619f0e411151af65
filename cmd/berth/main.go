// Command berth is the container engine: the docker-like CLI, the daemon
// ("berth daemon") and, when invoked as berth-runtime, the OCI runtime.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "berth: not built yet")
	os.Exit(1)
}
