package client

import (
	"errors"
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
)

// Image references as github.com/distribution/reference parses them, written
// out by hand: that package compiles its grammar into regexps at init, which
// costs milliseconds on every CLI start; the CLI needs only the normalized
// name, tag and digest. Grammar (distribution/reference v0.6.0):
//
//	reference  := name [ ":" tag ] [ "@" digest ]
//	name       := [ domain "/" ] path-component { "/" path-component }
//	domain     := host [ ":" port ]; host := dcomp { "." dcomp } | "[" ipv6 "]"
//	dcomp      := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
//	path-comp  := [a-z0-9]+ { separator [a-z0-9]+ };  separator := [_.] | "__" | "-"+
//	tag        := [\w][\w.-]{0,127}
//	digest     := alg ":" hex{32,};  alg := [A-Za-z][A-Za-z0-9]* { [-_+.] [A-Za-z][A-Za-z0-9]* }
//
// Differential-tested against distribution/reference in reference_test.go.

var (
	errReferenceInvalidFormat = errors.New("invalid reference format")
	errNameContainsUppercase  = errors.New("repository name must be lowercase")
	errNameEmpty              = errors.New("repository name must have at least one component")
	errNameTooLong            = errors.New("repository name must not be more than 255 characters")
)

const nameTotalLengthMax = 255

// namedRef is a parsed, normalized reference: name "docker.io/library/x".
type namedRef struct {
	name   string
	tag    string
	digest digest.Digest
}

// tagOrLatest is the tag, "latest" when the reference has neither tag nor digest
// (distribution/reference's TagNameOnly).
func (r namedRef) tagOrLatest() string {
	if r.tag == "" && r.digest == "" {
		return "latest"
	}
	return r.tag
}

// isIdentifier is a 64-hex image ID.
func isIdentifier(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !(s[i] >= '0' && s[i] <= '9' || s[i] >= 'a' && s[i] <= 'f') {
			return false
		}
	}
	return true
}

// parseNormalizedNamed is distribution/reference.ParseNormalizedNamed.
func parseNormalizedNamed(s string) (namedRef, error) {
	if isIdentifier(s) {
		return namedRef{}, fmt.Errorf("invalid repository name (%s), cannot specify 64-byte hexadecimal strings", s)
	}
	domain, remainder := splitDockerDomain(s)
	remote := remainder
	if i := strings.IndexRune(remainder, ':'); i > -1 {
		remote = remainder[:i]
	}
	if strings.ToLower(remote) != remote {
		return namedRef{}, fmt.Errorf("invalid reference format: repository name (%s) must be lowercase", remote)
	}
	return parseReference(domain + "/" + remainder)
}

// parseAnyReference accepts what ParseAnyReference does: an ID, a digest or a name.
func parseAnyReference(s string) error {
	if isIdentifier(s) {
		return nil
	}
	if _, err := digest.Parse(s); err == nil {
		return nil
	}
	_, err := parseNormalizedNamed(s)
	return err
}

func splitDockerDomain(name string) (domain, remote string) {
	maybeDomain, maybeRemote, ok := strings.Cut(name, "/")
	if !ok {
		return "docker.io", "library/" + name
	}
	switch {
	case maybeDomain == "index.docker.io":
		domain, remote = "docker.io", maybeRemote
	case maybeDomain == "localhost",
		strings.ContainsAny(maybeDomain, ".:"),
		strings.ToLower(maybeDomain) != maybeDomain:
		domain, remote = maybeDomain, maybeRemote
	default:
		domain, remote = "docker.io", name
	}
	if domain == "docker.io" && !strings.ContainsRune(remote, '/') {
		remote = "library/" + remote
	}
	return domain, remote
}

// parseReference is distribution/reference.Parse for a reference with a name.
func parseReference(s string) (namedRef, error) {
	ref, path, ok := matchReference(s)
	if !ok {
		if s == "" {
			return namedRef{}, errNameEmpty
		}
		if _, _, ok := matchReference(strings.ToLower(s)); ok {
			return namedRef{}, errNameContainsUppercase
		}
		return namedRef{}, errReferenceInvalidFormat
	}
	if len(path) > nameTotalLengthMax {
		return namedRef{}, errNameTooLong
	}
	if ref.digest != "" {
		d, err := digest.Parse(string(ref.digest))
		if err != nil {
			return namedRef{}, err
		}
		ref.digest = d
	}
	return ref, nil
}

// matchReference checks s against the grammar; path is the name without its domain.
func matchReference(s string) (ref namedRef, path string, ok bool) {
	rest := s
	if i := strings.IndexByte(rest, '@'); i >= 0 {
		if !isDigestPattern(rest[i+1:]) {
			return ref, "", false
		}
		ref.digest = digest.Digest(rest[i+1:])
		rest = rest[:i]
	}
	// A ':' after the last '/' starts the tag; one before it is a port.
	if i := strings.LastIndexByte(rest, ':'); i >= 0 && i > strings.LastIndexByte(rest, '/') {
		if !isTag(rest[i+1:]) {
			return ref, "", false
		}
		ref.tag = rest[i+1:]
		rest = rest[:i]
	}
	ref.name = rest
	// The domain is optional and tried first, as the regexp does.
	if d, p, ok := strings.Cut(rest, "/"); ok && isDomain(d) && isRemoteName(p) {
		return ref, p, true
	}
	if isRemoteName(rest) {
		return ref, rest, true
	}
	return ref, "", false
}

func isAlnumLower(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

func isAlnum(c byte) bool { return isAlnumLower(c) || c >= 'A' && c <= 'Z' }

func isWord(c byte) bool { return isAlnum(c) || c == '_' }

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

func isRemoteName(s string) bool {
	for _, comp := range strings.Split(s, "/") {
		if !isPathComponent(comp) {
			return false
		}
	}
	return true
}

// isPathComponent: [a-z0-9]+ ( ([_.]|__|-+) [a-z0-9]+ )*
func isPathComponent(s string) bool {
	i := 0
	alnum := func() bool {
		start := i
		for i < len(s) && isAlnumLower(s[i]) {
			i++
		}
		return i > start
	}
	if !alnum() {
		return false
	}
	for i < len(s) {
		switch {
		case s[i] == '.':
			i++
		case strings.HasPrefix(s[i:], "__"):
			i += 2
		case s[i] == '_':
			i++
		case s[i] == '-':
			for i < len(s) && s[i] == '-' {
				i++
			}
		default:
			return false
		}
		if !alnum() {
			return false
		}
	}
	return true
}

// isDomain: host [":" port], host a dotted name or a bracketed IPv6 address.
func isDomain(s string) bool {
	host := s
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 2 {
			return false
		}
		for i := 1; i < end; i++ {
			if !isHex(s[i]) && s[i] != ':' {
				return false
			}
		}
		port := s[end+1:]
		return port == "" || isPort(port)
	}
	if i := strings.IndexByte(s, ':'); i >= 0 {
		host = s[:i]
		if !isPort(s[i:]) {
			return false
		}
	}
	for _, comp := range strings.Split(host, ".") {
		if comp == "" || !isAlnum(comp[0]) || !isAlnum(comp[len(comp)-1]) {
			return false
		}
		for j := 0; j < len(comp); j++ {
			if !isAlnum(comp[j]) && comp[j] != '-' {
				return false
			}
		}
	}
	return true
}

// isPort: ":" [0-9]+
func isPort(s string) bool {
	if len(s) < 2 || s[0] != ':' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// isTag: [\w][\w.-]{0,127}
func isTag(s string) bool {
	if len(s) == 0 || len(s) > 128 || !isWord(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isWord(s[i]) && s[i] != '.' && s[i] != '-' {
			return false
		}
	}
	return true
}

// isDigestPattern: alg ":" hex{32,}
func isDigestPattern(s string) bool {
	alg, hex, ok := strings.Cut(s, ":")
	if !ok || len(hex) < 32 {
		return false
	}
	for i := 0; i < len(hex); i++ {
		if !isHex(hex[i]) {
			return false
		}
	}
	// [A-Za-z][A-Za-z0-9]* ( [-_+.] [A-Za-z][A-Za-z0-9]* )*
	start := true
	for i := 0; i < len(alg); i++ {
		c := alg[i]
		switch {
		case start:
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
				return false
			}
			start = false
		case strings.IndexByte("-_+.", c) >= 0:
			start = true
		case !isAlnum(c):
			return false
		}
	}
	return len(alg) > 0 && !start
}
