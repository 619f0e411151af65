// Package runtimecli is berth-runtime's runc-compatible command line over
// internal/runtime. Parsing uses the standard flag package (one FlagSet per
// command): cobra costs startup time on a path where every millisecond shows.
package runtimecli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/runtime"
)

// Version is printed by --version.
var Version = "0.1.0"

type globals struct {
	root      string
	log       string
	logFormat string
	debug     bool
	systemd   bool
}

type logger struct {
	w      io.Writer
	json   bool
	debug  bool
	closer io.Closer
}

func (l *logger) log(level, msg string) {
	if level == "debug" && !l.debug {
		return
	}
	if l.json {
		b, _ := json.Marshal(map[string]string{"level": level, "msg": msg, "time": time.Now().Format(time.RFC3339Nano)})
		fmt.Fprintf(l.w, "%s\n", b)
		return
	}
	fmt.Fprintf(l.w, "time=%q level=%s msg=%q\n", time.Now().Format(time.RFC3339Nano), level, msg)
}

type command struct {
	name  string
	usage string
	run   func(ctx context.Context, g *globals, rt *runtime.Runtime, args []string) (int, error)
}

var commands []command

func init() {
	commands = []command{
		{"create", "create [--bundle DIR] [--pid-file F] [--console-socket S] [--no-pivot] [--no-new-keyring] [--preserve-fds N] ID", cmdCreate},
		{"start", "start ID", cmdStart},
		{"run", "run [-d] [create flags] ID", cmdRun},
		{"state", "state ID", cmdState},
		{"kill", "kill [--all] ID [SIGNAL]", cmdKill},
		{"delete", "delete [--force] ID", cmdDelete},
		{"list", "list [-q] [--format table|json]", cmdList},
		{"ps", "ps [--format table|json] ID [ps options]", cmdPs},
		{"exec", "exec [flags] ID [COMMAND ARGS...]", cmdExec},
		{"pause", "pause ID", cmdPause},
		{"resume", "resume ID", cmdResume},
		{"update", "update [flags | -r FILE] ID", cmdUpdate},
		{"events", "events [--stats] [--interval D] ID", cmdEvents},
		{"spec", "spec [--bundle DIR] [--rootless]", cmdSpec},
		{"features", "features", cmdFeatures},
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: berth-runtime [--root DIR] [--log FILE] [--log-format text|json] [--debug] COMMAND [ARGS]")
	fmt.Fprintln(w, "\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %s\n", c.usage)
	}
}

// Main runs the CLI with args (os.Args) and returns the exit status.
func Main(args []string) int {
	g := &globals{}
	fs := flag.NewFlagSet("berth-runtime", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&g.root, "root", runtime.DefaultRoot, "state directory")
	fs.StringVar(&g.log, "log", "", "log file")
	fs.StringVar(&g.logFormat, "log-format", "text", "text or json")
	fs.BoolVar(&g.debug, "debug", false, "debug logging")
	fs.BoolVar(&g.systemd, "systemd-cgroup", false, "use systemd cgroups (unsupported)")
	var version, help bool
	fs.BoolVar(&version, "version", false, "")
	fs.BoolVar(&version, "v", false, "")
	fs.BoolVar(&help, "help", false, "")
	fs.BoolVar(&help, "h", false, "")
	fs.String("criu", "", "ignored")
	fs.String("rootless", "", "ignored")
	if err := fs.Parse(args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "berth-runtime: %v\n", err)
		usage(os.Stderr)
		return 2
	}
	if version {
		fmt.Printf("berth-runtime version %s\nspec: %s\n", Version, specVersion())
		return 0
	}
	rest := fs.Args()
	if help || len(rest) == 0 {
		usage(os.Stdout)
		if len(rest) == 0 && !help {
			return 2
		}
		return 0
	}
	lg := &logger{w: os.Stderr, json: g.logFormat == "json", debug: g.debug}
	if g.logFormat != "text" && g.logFormat != "json" {
		fmt.Fprintf(os.Stderr, "berth-runtime: --log-format %q: want text or json\n", g.logFormat)
		return 2
	}
	if g.log != "" {
		f, err := os.OpenFile(g.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_SYNC, 0o644)
		if err != nil {
			fmt.Fprintf(os.Stderr, "berth-runtime: open log: %v\n", err)
			return 1
		}
		lg.w, lg.closer = f, f
		defer f.Close()
	}
	name := rest[0]
	if name == "version" {
		fmt.Printf("berth-runtime version %s\nspec: %s\n", Version, specVersion())
		return 0
	}
	if name == "help" {
		usage(os.Stdout)
		return 0
	}
	fail := func(err error) int {
		msg := err.Error()
		fmt.Fprintf(os.Stderr, "berth-runtime: %s\n", msg)
		if g.log != "" {
			lg.log("error", msg)
		}
		return 1
	}
	if g.systemd {
		return fail(errors.New("--systemd-cgroup is not supported: berth-runtime manages cgroupfs directly; drop the flag (and use a cgroupsPath like /berth/ID)"))
	}
	for _, c := range commands {
		if c.name != name {
			continue
		}
		lg.log("debug", "command "+strings.Join(rest, " "))
		rt := &runtime.Runtime{Root: g.root}
		code, err := c.run(context.Background(), g, rt, rest[1:])
		if err != nil {
			return fail(err)
		}
		return code
	}
	fmt.Fprintf(os.Stderr, "berth-runtime: unknown command %q\n", name)
	usage(os.Stderr)
	return 2
}

// parse parses a command's flags; the command's positional args follow.
func parse(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%s: %w", fs.Name(), err)
	}
	return nil
}

func needID(fs *flag.FlagSet) (string, error) {
	if fs.NArg() < 1 {
		return "", fmt.Errorf("%s: container id missing", fs.Name())
	}
	return fs.Arg(0), nil
}
