package main

import "github.com/berth-dev/berth/internal/runtimecli"

// runtimeMain is the OCI runtime personality (argv[0] berth-runtime), so
// that one berth binary can also serve as the runtime. bin/berth-runtime is
// the same code in a smaller binary, which the daemon prefers.
func runtimeMain(args []string) int { return runtimecli.Main(args) }
