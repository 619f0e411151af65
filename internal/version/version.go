// Package version holds the build's version, set by the Makefile through -ldflags.
package version

// Version is berth's version string, GitCommit the commit it was built
// from and BuildTime when; "dev" and empty for builds outside the Makefile.
var (
	Version   = "dev"
	GitCommit = ""
	BuildTime = ""
)

// APIVersion is the Docker Engine API version berth advertises, and
// MinAPIVersion the oldest it accepts.
const (
	APIVersion    = "1.41"
	MinAPIVersion = "1.24"
)
