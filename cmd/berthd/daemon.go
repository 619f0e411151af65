package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/daemon"
)

const daemonUsage = `Usage:  berth daemon [OPTIONS]

Run the berth daemon: the Docker Engine API on unix:///run/berth/berth.sock.

Options:
`

// runDaemon is `berth daemon`: flags over daemon.json, then serve until
// SIGINT/SIGTERM. Containers keep running when the daemon stops.
func runDaemon(args []string) int {
	fs := pflag.NewFlagSet("daemon", pflag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(os.Stderr, daemonUsage+fs.FlagUsages()) }
	var (
		cfg        daemon.Config
		configFile = fs.String("config-file", "/etc/berth/daemon.json", "Daemon configuration file")
		hosts      = fs.StringArrayP("host", "H", nil, "Daemon socket(s) to listen on (unix:// or tcp:// with TLS)")
		tlsVerify  = fs.Bool("tlsverify", false, "Use TLS and verify the client certificate")
		tlsCA      = fs.String("tlscacert", "", "Trust client certificates signed by this CA")
		tlsCert    = fs.String("tlscert", "", "Path to the TLS certificate file")
		tlsKey     = fs.String("tlskey", "", "Path to the TLS key file")
		insecureTC = fs.Bool("insecure-tcp", false, "Allow plain TCP without TLS (anyone who can connect is root)")
		pidfile    = fs.StringP("pidfile", "p", "", "Path to use for the daemon PID file (default: <exec-root>/berth.pid)")
		debug      = fs.BoolP("debug", "D", false, "Enable debug logging")
		dataRoot   = fs.String("data-root", "", "Root directory of persistent state (default /var/lib/berth)")
		execRoot   = fs.String("exec-root", "", "Root directory of execution state (default /run/berth)")
		insecure   = fs.StringArray("insecure-registry", nil, "Registries (host:port or CIDR) reached over plain HTTP")
		mirrors    = fs.StringArray("registry-mirror", nil, "Preferred Docker Hub mirror")
		logDriver  = fs.String("log-driver", "", "Default driver for container logs (json-file, local, none)")
		logOpts    = fs.StringArray("log-opt", nil, "Default log driver options (key=value)")
		runtime    = fs.String("default-runtime", "", "Default OCI runtime for containers (berth, runc, crun)")
		storage    = fs.StringP("storage-driver", "s", "", "Storage driver (overlay, native)")
		bridge     = fs.StringP("bridge", "b", "", "Device of the default bridge network (default berth0; \"none\": no default network)")
		bip        = fs.String("bip", "", "Address and prefix of the default bridge (e.g. 172.17.0.1/16)")
		mtu        = fs.Int("mtu", 0, "MTU of container networks (default 1500)")
		dns        = fs.StringArray("dns", nil, "Default DNS servers of containers")
		usernsMap  = fs.String("userns-remap", "", "User/Group setting for user namespaces (default, user, user:group, uid, uid:gid)")
	)
	if err := fs.Parse(args); err != nil {
		if err == pflag.ErrHelp {
			return 0
		}
		fmt.Fprintln(os.Stderr, err)
		return 125
	}
	if err := daemon.LoadConfigFile(*configFile, &cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&cfg.DataRoot, *dataRoot)
	set(&cfg.ExecRoot, *execRoot)
	set(&cfg.LogDriver, *logDriver)
	set(&cfg.DefaultRuntime, *runtime)
	set(&cfg.StorageDriver, *storage)
	set(&cfg.Bridge, *bridge)
	set(&cfg.BIP, *bip)
	set(&cfg.UsernsRemap, *usernsMap)
	if *mtu != 0 {
		cfg.MTU = *mtu
	}
	cfg.DNS = append(cfg.DNS, *dns...)
	cfg.Debug = cfg.Debug || *debug
	cfg.InsecureRegistries = append(cfg.InsecureRegistries, *insecure...)
	cfg.RegistryMirrors = append(cfg.RegistryMirrors, *mirrors...)
	for _, o := range *logOpts {
		k, v, ok := strings.Cut(o, "=")
		if !ok {
			fmt.Fprintf(os.Stderr, "invalid log-opt %q: want key=value\n", o)
			return 125
		}
		if cfg.LogOpts == nil {
			cfg.LogOpts = map[string]string{}
		}
		cfg.LogOpts[k] = v
	}
	if len(*hosts) > 0 {
		cfg.Hosts = *hosts
	}
	if len(cfg.Hosts) == 0 {
		cfg.Hosts = []string{"unix:///run/berth/berth.sock"}
	}
	cfg.SetDefaults()

	level := slog.LevelInfo
	if cfg.Debug {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(log)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	d, err := daemon.New(ctx, cfg, log)
	if err != nil {
		log.Error("start daemon", "err", err)
		return 1
	}
	defer d.Close()

	pf := *pidfile
	if pf == "" {
		pf = filepath.Join(cfg.ExecRoot, "berth.pid")
	}
	_ = os.WriteFile(pf, []byte(fmt.Sprintf("%d\n", os.Getpid())), 0o644)
	defer os.Remove(pf)

	var listeners []net.Listener
	for _, h := range cfg.Hosts {
		if strings.HasPrefix(h, "unix://") {
			_ = os.MkdirAll(filepath.Dir(strings.TrimPrefix(h, "unix://")), 0o755)
		}
		if strings.HasPrefix(h, "tcp://") && !*tlsVerify && !*insecureTC && *tlsCert == "" {
			log.Error("refusing plain TCP: give --tlsverify with --tlscacert, --tlscert and --tlskey, or --insecure-tcp", "host", h)
			return 1
		}
		l, err := api.Listen(h, api.TLSOptions{CACert: *tlsCA, Cert: *tlsCert, Key: *tlsKey, Insecure: *insecureTC, Logger: log})
		if err != nil {
			log.Error("listen", "err", err)
			return 1
		}
		listeners = append(listeners, l)
		log.Info("API listening", "addr", h)
	}
	srv := api.New(api.Backends{
		Containers:     d,
		ContainerInfo:  d,
		ContainerAdmin: d,
		Streams:        d,
		Exec:           d,
		Images:         d,
		Registry:       d,
		ImageArchive:   d,
		Archive:        d,
		System:         d,
		Networks:       d,
		Volumes:        d,
	}, api.Options{Logger: log})
	if err := api.Serve(ctx, listeners, newIdleTrim(srv, time.Second)); err != nil && ctx.Err() == nil {
		log.Error("serve", "err", err)
		return 1
	}
	log.Info("daemon stopped; containers keep running")
	return 0
}
