package spec

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImports keeps the package pure: no moby API types (they stay in
// internal/api), no other berth package, no I/O-heavy dependencies.
func TestImports(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	allowed := []string{
		"github.com/containerd/errdefs",
		"github.com/moby/profiles/seccomp",
		"github.com/moby/sys/user",
		"github.com/opencontainers/image-spec/specs-go/v1",
		"github.com/opencontainers/runtime-spec/specs-go",
	}
	testOnly := []string{"golang.org/x/sys/unix"}
	fset := token.NewFileSet()
	for _, f := range files {
		af, err := parser.ParseFile(fset, f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if !strings.Contains(p, ".") {
				continue // standard library
			}
			ok := false
			for _, a := range allowed {
				ok = ok || p == a
			}
			if strings.HasSuffix(f, "_test.go") {
				for _, a := range testOnly {
					ok = ok || p == a
				}
			}
			if !ok {
				t.Errorf("%s imports %s", f, p)
			}
		}
	}
}
