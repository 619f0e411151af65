// Package version holds the build's version, set by the Makefile through -ldflags.
package version

// Version is berth's version string; "dev" for builds outside the Makefile.
var Version = "dev"

// APIVersion is the Docker Engine API version berth advertises, and
// MinAPIVersion the oldest it accepts.
const (
	APIVersion    = "1.41"
	MinAPIVersion = "1.24"
)
