package cli

import (
	"reflect"
	"strings"
	"testing"
)

// TestDaemonCommand: `daemon` is listed, gets berthd's arguments after
// global options (with -D passed on), and its help is berthd's.
func TestDaemonCommand(t *testing.T) {
	var got [][]string
	RunDaemon = func(args []string) int { got = append(got, args); return 0 }
	defer func() { RunDaemon = nil }()

	if r := runCLI(t, "", "-D", "daemon", "--data-root", "/x", "-H", "unix:///s"); r.code != 0 {
		t.Fatalf("berth -D daemon: %+v", r)
	}
	if r := runCLI(t, "", "help", "daemon"); r.code != 0 {
		t.Fatalf("berth help daemon: %+v", r)
	}
	want := [][]string{{"--debug", "--data-root", "/x", "-H", "unix:///s"}, {"--help"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("berthd got %q, want %q", got, want)
	}
	if r := runCLI(t, "", "--help"); !strings.Contains(r.out, "daemon      Run the berth daemon") {
		t.Errorf("--help does not list daemon:\n%s", r.out)
	}

	RunDaemon = func([]string) int { return 3 }
	if r := runCLI(t, "", "-D", "daemon"); r.code != 3 {
		t.Errorf("exit status of a failed daemon: %d, want 3", r.code)
	}
	RunDaemon = nil
	if r := runCLI(t, "", "-D", "daemon"); r.code == 0 || !strings.Contains(r.err, "cannot start the daemon") {
		t.Errorf("without berthd: %+v", r)
	}
}
