package runtime

// The C constructor in nsexec.c runs before the Go runtime in every binary
// that links this package; it returns at once unless _BERTH_INITPIPE is set.

// #cgo CFLAGS: -Wall -O2
import "C"
