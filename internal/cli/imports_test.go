package cli

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImportsNoBerthPackage enforces the layering rule: the CLI talks to
// the daemon only through the Docker API, so it imports no berth package
// outside the CLI's own tree (its API client lives in ./client).
func TestImportsNoBerthPackage(t *testing.T) {
	fset := token.NewFileSet()
	for _, dir := range []string{".", "client"} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if !strings.HasSuffix(e.Name(), ".go") {
				continue
			}
			name := filepath.Join(dir, e.Name())
			f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range f.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				if strings.HasPrefix(p, "github.com/berth-dev/berth/") && !strings.HasPrefix(p, "github.com/berth-dev/berth/internal/cli/") {
					t.Errorf("%s imports %s", name, p)
				}
			}
		}
	}
}
