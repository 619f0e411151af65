package cli

import (
	"context"
	"io"
	"strings"
	"testing"
)

// BenchmarkVersion measures building the command tree and running
// `berth --version` in-process (CLI startup cost minus process exec/init).
func BenchmarkVersion(b *testing.B) {
	for i := 0; i < b.N; i++ {
		Run(context.Background(), []string{"--version"}, strings.NewReader(""), io.Discard, io.Discard)
	}
}

// BenchmarkHelpAll builds every command (help and completion need them all).
func BenchmarkHelpAll(b *testing.B) {
	for i := 0; i < b.N; i++ {
		Run(context.Background(), []string{"--help"}, strings.NewReader(""), io.Discard, io.Discard)
	}
}

// BenchmarkRunHelp builds only the run command.
func BenchmarkRunHelp(b *testing.B) {
	for i := 0; i < b.N; i++ {
		Run(context.Background(), []string{"run", "--help"}, strings.NewReader(""), io.Discard, io.Discard)
	}
}
