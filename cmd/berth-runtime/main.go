// Command berth-runtime is berth's OCI runtime alone, runc-compatible. It is
// kept small: the container init runs a protected clone of this binary
// (CVE-2019-5736), and less code means a faster start.
package main

import (
	"os"

	"github.com/berth-dev/berth/internal/runtimecli"
)

func main() {
	os.Exit(runtimecli.Main(os.Args))
}
