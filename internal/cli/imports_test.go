package cli

import (
	"go/build"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
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
				// internal/version is build metadata only (set by the Makefile's -ldflags; it imports nothing).
				if strings.HasPrefix(p, "github.com/berth-dev/berth/") && !strings.HasPrefix(p, "github.com/berth-dev/berth/internal/cli/") &&
					p != "github.com/berth-dev/berth/internal/version" {
					t.Errorf("%s imports %s", name, p)
				}
			}
		}
	}
}

// TestBerthBinaryDoesNotLinkNetHTTP keeps net/http out of the CLI binary:
// linking it costs every CLI start ~4-5 ms of CPU (size, package inits,
// page faults), so the API client has its own HTTP/1.1 transport
// (client/transport.go) and progress streams their own renderer
// (progress.go). Test-only imports do not count.
func TestBerthBinaryDoesNotLinkNetHTTP(t *testing.T) {
	goTool := filepath.Join(build.Default.GOROOT, "bin", "go")
	if _, err := os.Stat(goTool); err != nil {
		if goTool, err = exec.LookPath("go"); err != nil {
			t.Skip("needs the go tool: not found")
		}
	}
	cmd := exec.Command(goTool, "list", "-deps", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "../../cmd/berth")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		pkg, imports, _ := strings.Cut(line, " ")
		for _, imp := range strings.Fields(imports) {
			if imp == "net/http" {
				t.Errorf("%s imports net/http, which ./cmd/berth must not link", pkg)
			}
		}
	}
	if !strings.Contains(string(out), "github.com/berth-dev/berth/internal/cli/client ") {
		t.Fatalf("go list output does not list the CLI's client: %.300s", out)
	}
}
