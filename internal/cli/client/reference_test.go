package client

import (
	"math/rand"
	"strings"
	"testing"

	"github.com/distribution/reference"
)

// TestReferenceMatchesDistribution checks the hand-written parser against
// github.com/distribution/reference (linked into the test only) on a corpus
// of edge cases and random strings over the grammar's alphabet.
func TestReferenceMatchesDistribution(t *testing.T) {
	corpus := []string{
		"", "busybox", "busybox:latest", "busybox:v2s2", "library/busybox", "docker.io/busybox",
		"index.docker.io/busybox", "index.docker.io/a/b", "localhost/foo", "localhost:5000/foo:bar",
		"127.0.0.1:5000/busybox:latest", "[::1]:5000/foo", "[::1]/foo", "[]/foo", "[zz]/foo",
		"Foo", "foo/Bar", "FOO.io/bar", "Foo/bar", "a__b", "a___b", "a--b", "a-", "-a", "a.b", "a..b", "a_b",
		"foo:", "foo:-bad", "foo:_ok", "foo:" + strings.Repeat("t", 128), "foo:" + strings.Repeat("t", 129),
		"foo@sha256:" + strings.Repeat("a", 64), "foo:tag@sha256:" + strings.Repeat("a", 64),
		"foo@sha256:" + strings.Repeat("a", 63), "foo@sha256:abc", "foo@md5:" + strings.Repeat("a", 32),
		"foo@sha512:" + strings.Repeat("b", 128), "foo@SHA256:" + strings.Repeat("a", 64),
		"sha256:" + strings.Repeat("a", 64), strings.Repeat("a", 64), strings.Repeat("A", 64),
		"host:port/foo", "host:5000", "host:5000/", "a/b/c/d:e", "a//b", "/a", "a/", "a:b:c", "a:b/c",
		strings.Repeat("a", 256), "x/" + strings.Repeat("a", 250), "exa-mple.com/x", "-ex.com/x", "ex-.com/x",
		"ex_ample.com/x", "foo@", "@sha256:" + strings.Repeat("a", 64), "foo bar", "föö",
	}
	rng := rand.New(rand.NewSource(1))
	const alphabet = "abAB09._-:/@[]"
	for i := 0; i < 20000; i++ {
		n := 1 + rng.Intn(14)
		b := make([]byte, n)
		for j := range b {
			b[j] = alphabet[rng.Intn(len(alphabet))]
		}
		corpus = append(corpus, string(b))
	}
	// And strings built from the grammar's tokens, to reach deep cases.
	tokens := []string{"a", "b9", "0", "-", "--", "_", "__", ".", ":", "/", "5000", "localhost", "docker.io",
		"index.docker.io", "X", "[::1]", "@sha256:" + strings.Repeat("c", 64), "@sha512:" + strings.Repeat("d", 128), "library"}
	for i := 0; i < 20000; i++ {
		var b strings.Builder
		for n := 1 + rng.Intn(8); n > 0; n-- {
			b.WriteString(tokens[rng.Intn(len(tokens))])
		}
		corpus = append(corpus, b.String())
	}
	valid := 0
	for _, s := range corpus {
		if _, werr := reference.ParseAnyReference(s); (werr == nil) != (parseAnyReference(s) == nil) {
			t.Errorf("any %q: error %v, want %v", s, parseAnyReference(s), werr)
		}
		want, werr := reference.ParseNormalizedNamed(s)
		got, gerr := parseNormalizedNamed(s)
		if (werr == nil) != (gerr == nil) || (werr != nil && werr.Error() != gerr.Error()) {
			t.Errorf("%q: error %v, want %v", s, gerr, werr)
			continue
		}
		if werr != nil {
			continue
		}
		valid++
		wantTag := ""
		if tagged, ok := reference.TagNameOnly(want).(reference.Tagged); ok {
			wantTag = tagged.Tag()
		}
		wantDigest := ""
		if d, ok := want.(reference.Digested); ok {
			wantDigest = d.Digest().String()
		}
		if got.name != want.Name() || got.tagOrLatest() != wantTag || got.digest.String() != wantDigest {
			t.Errorf("%q: got %q %q %q, want %q %q %q", s, got.name, got.tagOrLatest(), got.digest, want.Name(), wantTag, wantDigest)
		}
	}
	if valid < 2000 {
		t.Errorf("only %d of %d references valid: the corpus misses the parsing paths", valid, len(corpus))
	}
}
