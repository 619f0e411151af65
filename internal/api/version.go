package api

import (
	"net/http"
	"strconv"
	"strings"
)

const (
	// MaxAPIVersion is the API version berth speaks and advertises. Clients
	// that negotiate (docker CLI, moby client) settle on it.
	MaxAPIVersion = "1.41"
	// MinAPIVersion is the oldest version accepted.
	MinAPIVersion = "1.24"
	// EngineVersion is reported as the engine version (docker's 20.10
	// speaks 1.41; clients gate features on the API version, not on this).
	EngineVersion = "20.10.0-berth"
)

type versionKey struct{}

// apiVersion is the client's version for this request (MaxAPIVersion when
// the path had no /vN.NN prefix).
func apiVersion(r *http.Request) string {
	if v, ok := r.Context().Value(versionKey{}).(string); ok && v != "" {
		return v
	}
	return MaxAPIVersion
}

// versionLess reports a < b for "major.minor" API versions.
func versionLess(a, b string) bool { return compareVersions(a, b) < 0 }

func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) || i < len(bs); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

// splitVersion strips a "/v1.NN" prefix and checks it against the
// supported range, with docker's messages.
func splitVersion(p string) (version, rest string, err error) {
	if !strings.HasPrefix(p, "/v") {
		return MaxAPIVersion, p, nil
	}
	seg, tail, _ := strings.Cut(p[2:], "/")
	if !isVersion(seg) {
		return MaxAPIVersion, p, nil // not a version prefix; let the mux 404
	}
	if compareVersions(seg, MaxAPIVersion) > 0 {
		return "", "", invalidArg("client version %s is too new. Maximum supported API version is %s", seg, MaxAPIVersion)
	}
	if compareVersions(seg, MinAPIVersion) < 0 {
		return "", "", invalidArg("client version %s is too old. Minimum supported API version is %s, please upgrade your client to a newer version", seg, MinAPIVersion)
	}
	return seg, "/" + tail, nil
}

func isVersion(s string) bool {
	maj, min, ok := strings.Cut(s, ".")
	if !ok || maj == "" || min == "" {
		return false
	}
	for _, c := range maj + min {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
