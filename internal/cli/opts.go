package cli

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/spf13/pflag"
)

// containerOptions holds every `docker run`/`create` flag. parseContainer
// turns it into the API's Config, HostConfig and NetworkingConfig exactly
// as docker's CLI does, so the daemon sees the same request from both.
type containerOptions struct {
	attach, env, envFile, labels, labelFile, volumes, tmpfs, volumesFrom, publish, expose listOpt
	links, aliases, dns, dnsSearch, dnsOptions, extraHosts, capAdd, capDrop, groupAdd     listOpt
	securityOpt, storageOpt, logOpts, devices, deviceCgroupRules, linkLocalIPs, mounts    listOpt
	networks                                                                              listOpt
	sysctls, annotations                                                                  mapOpt
	ulimits                                                                               ulimitOpt
	deviceReadBps, deviceWriteBps                                                         throttleOpt
	deviceReadIOps, deviceWriteIOps                                                       throttleOpt
	blkioWeightDevice                                                                     weightDeviceOpt

	memory, memoryReservation, shmSize, kernelMemory memBytes
	memorySwap                                       memSwapBytes
	cpus                                             nanoCPUs

	hostname, domainname, user, workdir, entrypoint, name, cidFile         string
	cgroupParent, cgroupns, ipc, pid, uts, userns, isolation, runtime      string
	logDriver, volumeDriver, stopSignal, macAddress, ipv4, ipv6, gpus      string
	healthCmd, restart, cpusetCpus, cpusetMems                             string
	healthInterval, healthTimeout, healthStartPeriod, healthStartInterval  time.Duration
	healthRetries, stopTimeout, oomScoreAdj                                int
	cpuShares, cpuPeriod, cpuQuota, cpuRtPeriod, cpuRtRuntime, swappiness  int64
	pidsLimit, cpuCount, cpuPercent                                        int64
	blkioWeight                                                            uint16
	tty, stdin, privileged, publishAll, readOnly, rm, init, oomKillDisable bool
	noHealthcheck, useAPISocket                                            bool

	image string
	args  []string
}

// addContainerFlags registers the flags shared by run and create.
func addContainerFlags(fl *pflag.FlagSet, o *containerOptions) {
	o.env.validate = validateEnv
	o.labels.validate = validateLabel
	o.dns.validate = validateIP
	o.extraHosts.validate = validateExtraHost
	o.attach.validate = validateAttach
	o.sysctls.validate = validateSysctl
	o.deviceReadBps.bytes = true
	o.deviceWriteBps.bytes = true

	fl.SetInterspersed(false)
	fl.VarP(&o.attach, "attach", "a", "Attach to STDIN, STDOUT or STDERR")
	fl.VarP(&o.env, "env", "e", "Set environment variables")
	fl.Var(&o.envFile, "env-file", "Read in a file of environment variables")
	fl.VarP(&o.labels, "label", "l", "Set meta data on a container")
	fl.Var(&o.labelFile, "label-file", "Read in a line delimited file of labels")
	fl.VarP(&o.volumes, "volume", "v", "Bind mount a volume")
	fl.Var(&o.mounts, "mount", "Attach a filesystem mount to the container")
	fl.Var(&o.tmpfs, "tmpfs", "Mount a tmpfs directory")
	fl.Var(&o.volumesFrom, "volumes-from", "Mount volumes from the specified container(s)")
	fl.StringVar(&o.volumeDriver, "volume-driver", "", "Optional volume driver for the container")
	fl.VarP(&o.publish, "publish", "p", "Publish a container's port(s) to the host")
	fl.BoolVarP(&o.publishAll, "publish-all", "P", false, "Publish all exposed ports to random ports")
	fl.Var(&o.expose, "expose", "Expose a port or a range of ports")
	fl.Var(&o.networks, "network", "Connect a container to a network")
	fl.Var(&o.networks, "net", "Connect a container to a network")
	_ = fl.MarkHidden("net")
	fl.Var(&o.aliases, "network-alias", "Add network-scoped alias for the container")
	fl.Var(&o.aliases, "net-alias", "Add network-scoped alias for the container")
	_ = fl.MarkHidden("net-alias")
	fl.Var(&o.links, "link", "Add link to another container")
	fl.Var(&o.linkLocalIPs, "link-local-ip", "Container IPv4/IPv6 link-local addresses")
	fl.StringVar(&o.ipv4, "ip", "", "IPv4 address (e.g., 172.30.100.104)")
	fl.StringVar(&o.ipv6, "ip6", "", "IPv6 address (e.g., 2001:db8::33)")
	fl.StringVar(&o.macAddress, "mac-address", "", "Container MAC address (e.g., 92:d0:c6:0a:29:33)")
	fl.Var(&o.dns, "dns", "Set custom DNS servers")
	fl.Var(&o.dnsSearch, "dns-search", "Set custom DNS search domains")
	fl.Var(&o.dnsOptions, "dns-option", "Set DNS options")
	fl.Var(&o.dnsOptions, "dns-opt", "Set DNS options")
	_ = fl.MarkHidden("dns-opt")
	fl.Var(&o.extraHosts, "add-host", "Add a custom host-to-IP mapping (host:ip)")
	fl.StringVarP(&o.hostname, "hostname", "h", "", "Container host name")
	fl.StringVar(&o.domainname, "domainname", "", "Container NIS domain name")
	fl.StringVarP(&o.user, "user", "u", "", "Username or UID (format: <name|uid>[:<group|gid>])")
	fl.StringVarP(&o.workdir, "workdir", "w", "", "Working directory inside the container")
	fl.StringVar(&o.entrypoint, "entrypoint", "", "Overwrite the default ENTRYPOINT of the image")
	fl.StringVar(&o.name, "name", "", "Assign a name to the container")
	fl.StringVar(&o.cidFile, "cidfile", "", "Write the container ID to the file")
	fl.BoolVarP(&o.tty, "tty", "t", false, "Allocate a pseudo-TTY")
	fl.BoolVarP(&o.stdin, "interactive", "i", false, "Keep STDIN open even if not attached")
	fl.BoolVar(&o.privileged, "privileged", false, "Give extended privileges to this container")
	fl.BoolVar(&o.readOnly, "read-only", false, "Mount the container's root filesystem as read only")
	fl.BoolVar(&o.rm, "rm", false, "Automatically remove the container and its associated anonymous volumes when it exits")
	fl.BoolVar(&o.useAPISocket, "use-api-socket", false, "Bind mount the berth API socket at /var/run/docker.sock in the container")
	fl.BoolVar(&o.init, "init", false, "Run an init inside the container that forwards signals and reaps processes")
	fl.StringVar(&o.restart, "restart", "no", "Restart policy to apply when a container exits")
	fl.StringVar(&o.stopSignal, "stop-signal", "", "Signal to stop the container")
	fl.IntVar(&o.stopTimeout, "stop-timeout", 0, "Timeout (in seconds) to stop a container")
	fl.Var(&o.capAdd, "cap-add", "Add Linux capabilities")
	fl.Var(&o.capDrop, "cap-drop", "Drop Linux capabilities")
	fl.Var(&o.groupAdd, "group-add", "Add additional groups to join")
	fl.Var(&o.securityOpt, "security-opt", "Security Options")
	fl.Var(&o.storageOpt, "storage-opt", "Storage driver options for the container")
	fl.Var(&o.devices, "device", "Add a host device to the container")
	fl.Var(&o.deviceCgroupRules, "device-cgroup-rule", "Add a rule to the cgroup allowed devices list")
	fl.StringVar(&o.gpus, "gpus", "", "GPU devices to add to the container ('all' to pass all GPUs)")
	fl.Var(&o.sysctls, "sysctl", "Sysctl options")
	fl.Var(&o.annotations, "annotation", "Add an annotation to the container (passed through to the OCI runtime)")
	_ = fl.MarkHidden("annotation") // API >= 1.43; docker 28 hides it from an older daemon's help
	fl.Var(&o.ulimits, "ulimit", "Ulimit options")
	fl.StringVar(&o.logDriver, "log-driver", "", "Logging driver for the container")
	fl.Var(&o.logOpts, "log-opt", "Log driver options")
	fl.StringVar(&o.cgroupParent, "cgroup-parent", "", "Optional parent cgroup for the container")
	fl.StringVar(&o.cgroupns, "cgroupns", "", "Cgroup namespace to use (host|private)")
	fl.StringVar(&o.ipc, "ipc", "", "IPC mode to use")
	fl.StringVar(&o.pid, "pid", "", "PID namespace to use")
	fl.StringVar(&o.uts, "uts", "", "UTS namespace to use")
	fl.StringVar(&o.userns, "userns", "", "User namespace to use")
	fl.StringVar(&o.isolation, "isolation", "", "Container isolation technology")
	fl.StringVar(&o.runtime, "runtime", "", "Runtime to use for this container")
	fl.StringVar(&o.healthCmd, "health-cmd", "", "Command to run to check health")
	fl.DurationVar(&o.healthInterval, "health-interval", 0, "Time between running the check (ms|s|m|h) (default 0s)")
	fl.DurationVar(&o.healthTimeout, "health-timeout", 0, "Maximum time to allow one check to run (ms|s|m|h) (default 0s)")
	fl.DurationVar(&o.healthStartPeriod, "health-start-period", 0, "Start period for the container to initialize before starting health-retries countdown (ms|s|m|h) (default 0s)")
	fl.DurationVar(&o.healthStartInterval, "health-start-interval", 0, "Time between running the check during the start period (ms|s|m|h) (default 0s)")
	_ = fl.MarkHidden("health-start-interval")
	fl.IntVar(&o.healthRetries, "health-retries", 0, "Consecutive failures needed to report unhealthy")
	fl.BoolVar(&o.noHealthcheck, "no-healthcheck", false, "Disable any container-specified HEALTHCHECK")
	fl.VarP(&o.memory, "memory", "m", "Memory limit")
	fl.Var(&o.memoryReservation, "memory-reservation", "Memory soft limit")
	fl.Var(&o.memorySwap, "memory-swap", "Swap limit equal to memory plus swap: '-1' to enable unlimited swap")
	fl.Int64Var(&o.swappiness, "memory-swappiness", -1, "Tune container memory swappiness (0 to 100)")
	fl.Var(&o.kernelMemory, "kernel-memory", "Kernel memory limit")
	fl.BoolVar(&o.oomKillDisable, "oom-kill-disable", false, "Disable OOM Killer")
	fl.IntVar(&o.oomScoreAdj, "oom-score-adj", 0, "Tune host's OOM preferences (-1000 to 1000)")
	fl.Var(&o.shmSize, "shm-size", "Size of /dev/shm")
	fl.Var(&o.cpus, "cpus", "Number of CPUs")
	fl.Int64VarP(&o.cpuShares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	fl.Int64Var(&o.cpuPeriod, "cpu-period", 0, "Limit CPU CFS (Completely Fair Scheduler) period")
	fl.Int64Var(&o.cpuQuota, "cpu-quota", 0, "Limit CPU CFS (Completely Fair Scheduler) quota")
	fl.Int64Var(&o.cpuRtPeriod, "cpu-rt-period", 0, "Limit CPU real-time period in microseconds")
	fl.Int64Var(&o.cpuRtRuntime, "cpu-rt-runtime", 0, "Limit CPU real-time runtime in microseconds")
	fl.Int64Var(&o.cpuCount, "cpu-count", 0, "CPU count (Windows only)")
	fl.Int64Var(&o.cpuPercent, "cpu-percent", 0, "CPU percent (Windows only)")
	_ = fl.MarkHidden("cpu-count")
	_ = fl.MarkHidden("cpu-percent")
	fl.StringVar(&o.cpusetCpus, "cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)")
	fl.StringVar(&o.cpusetMems, "cpuset-mems", "", "MEMs in which to allow execution (0-3, 0,1)")
	fl.Int64Var(&o.pidsLimit, "pids-limit", 0, "Tune container pids limit (set -1 for unlimited)")
	fl.Uint16Var(&o.blkioWeight, "blkio-weight", 0, "Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)")
	fl.Var(&o.blkioWeightDevice, "blkio-weight-device", "Block IO weight (relative device weight)")
	fl.Var(&o.deviceReadBps, "device-read-bps", "Limit read rate (bytes per second) from a device")
	fl.Var(&o.deviceWriteBps, "device-write-bps", "Limit write rate (bytes per second) to a device")
	fl.Var(&o.deviceReadIOps, "device-read-iops", "Limit read rate (IO per second) from a device")
	fl.Var(&o.deviceWriteIOps, "device-write-iops", "Limit write rate (IO per second) to a device")
}

// containerConfig is what parseContainer produces.
type containerConfig struct {
	Config           *container.Config
	HostConfig       *container.HostConfig
	NetworkingConfig *network.NetworkingConfig
}

// parseContainer maps flags to the create request, following docker's
// runconfig rules (see the comments for the non-obvious ones).
func parseContainer(fl *pflag.FlagSet, o *containerOptions) (*containerConfig, error) {
	attachStdin, attachStdout, attachStderr := false, false, false
	for _, a := range o.attach.values {
		switch a {
		case "stdin":
			attachStdin = true
		case "stdout":
			attachStdout = true
		case "stderr":
			attachStderr = true
		}
	}
	if o.macAddress != "" {
		if _, err := net.ParseMAC(strings.TrimSpace(o.macAddress)); err != nil {
			return nil, fmt.Errorf("%s is not a valid mac address", o.macAddress)
		}
	}
	if o.stdin {
		attachStdin = true
	}
	// Without -a, stdout and stderr are attached.
	if o.attach.Len() == 0 {
		attachStdout, attachStderr = true, true
	}
	if o.swappiness != -1 && (o.swappiness < 0 || o.swappiness > 100) {
		return nil, fmt.Errorf("invalid value: %d. Valid memory swappiness range is 0-100", o.swappiness)
	}

	// -v with a source becomes a bind (relative ./paths made absolute); a
	// bare container path becomes an anonymous volume in Config.Volumes.
	var binds []string
	volumes := map[string]struct{}{}
	for _, v := range o.volumes.values {
		src, dst, err := splitVolumeSpec(v)
		if err != nil {
			return nil, err
		}
		if src == "" {
			volumes[dst] = struct{}{}
			continue
		}
		if strings.HasPrefix(src, ".") {
			if abs, err := filepath.Abs(src); err == nil {
				_, rest, _ := strings.Cut(v, ":")
				v = abs + ":" + rest
			}
		}
		binds = append(binds, v)
	}

	tmpfs := map[string]string{}
	for _, t := range o.tmpfs.values {
		k, v, _ := strings.Cut(t, ":")
		tmpfs[k] = v
	}

	var entrypoint []string
	if o.entrypoint != "" {
		entrypoint = []string{o.entrypoint}
	} else if fl.Changed("entrypoint") {
		// --entrypoint= resets the image's entrypoint.
		entrypoint = []string{""}
	}

	exposed, bindings, err := parsePortSpecs(o.publish.values)
	if err != nil {
		return nil, err
	}
	for _, e := range o.expose.values {
		pr, err := network.ParsePortRange(e)
		if err != nil {
			return nil, fmt.Errorf("invalid range format for --expose: %w", err)
		}
		for p := range pr.All() {
			exposed[p] = struct{}{}
		}
	}

	devices := make([]container.DeviceMapping, 0, len(o.devices.values))
	for _, d := range o.devices.values {
		dm, err := parseDevice(d)
		if err != nil {
			return nil, err
		}
		devices = append(devices, dm)
	}

	env, err := readKVFiles(o.envFile.values, o.env.values, true)
	if err != nil {
		return nil, fmt.Errorf("--env-file: %w", err)
	}
	labels, err := readKVFiles(o.labelFile.values, o.labels.values, false)
	if err != nil {
		return nil, fmt.Errorf("--label-file: %w", err)
	}

	if !validNamespaceMode(o.pid, true) {
		return nil, errors.New("--pid: invalid PID mode")
	}
	if !validNamespaceMode(o.uts, false) {
		return nil, errors.New("--uts: invalid UTS mode")
	}
	if o.userns != "" && o.userns != "host" {
		return nil, errors.New("--userns: invalid USER mode")
	}
	if o.cgroupns != "" && o.cgroupns != "host" && o.cgroupns != "private" {
		return nil, errors.New("--cgroupns: invalid CGROUP mode")
	}
	restart, err := parseRestartPolicy(o.restart)
	if err != nil {
		return nil, err
	}
	logOpts := map[string]string{}
	for _, l := range o.logOpts.values {
		k, v, _ := strings.Cut(l, "=")
		logOpts[k] = v
	}
	if o.logDriver == "none" && len(logOpts) > 0 {
		return nil, fmt.Errorf("invalid logging opts for driver %s", o.logDriver)
	}
	secOpts, maskedPaths, readonlyPaths, err := parseSecurityOpts(o.securityOpt.values)
	if err != nil {
		return nil, err
	}
	var storageOpts map[string]string
	for _, s := range o.storageOpt.values {
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			return nil, errors.New("invalid storage option")
		}
		if storageOpts == nil {
			storageOpts = map[string]string{}
		}
		storageOpts[k] = v
	}

	var health *container.HealthConfig
	haveHealth := o.healthCmd != "" || o.healthInterval != 0 || o.healthTimeout != 0 ||
		o.healthStartPeriod != 0 || o.healthRetries != 0 || o.healthStartInterval != 0
	if o.noHealthcheck {
		if haveHealth {
			return nil, errors.New("--no-healthcheck conflicts with --health-* options")
		}
		health = &container.HealthConfig{Test: []string{"NONE"}}
	} else if haveHealth {
		for name, d := range map[string]time.Duration{"interval": o.healthInterval, "timeout": o.healthTimeout,
			"start-period": o.healthStartPeriod, "start-interval": o.healthStartInterval} {
			if d < 0 {
				return nil, fmt.Errorf("--health-%s cannot be negative", name)
			}
		}
		if o.healthRetries < 0 {
			return nil, errors.New("--health-retries cannot be negative")
		}
		var probe []string
		if o.healthCmd != "" {
			probe = []string{"CMD-SHELL", o.healthCmd}
		}
		health = &container.HealthConfig{Test: probe, Interval: o.healthInterval, Timeout: o.healthTimeout,
			StartPeriod: o.healthStartPeriod, StartInterval: o.healthStartInterval, Retries: o.healthRetries}
	}

	var deviceRequests []container.DeviceRequest
	if o.gpus != "" {
		dr, err := parseGPUs(o.gpus)
		if err != nil {
			return nil, err
		}
		deviceRequests = append(deviceRequests, dr)
	}

	mounts, err := parseMounts(o.mounts.values)
	if err != nil {
		return nil, err
	}

	var dns []netip.Addr
	for _, d := range o.dns.values {
		a, _ := netip.ParseAddr(d)
		dns = append(dns, a)
	}
	if dns == nil {
		dns = []netip.Addr{}
	}

	swappiness, oomKillDisable, pidsLimit := o.swappiness, o.oomKillDisable, o.pidsLimit
	resources := container.Resources{
		CgroupParent:         o.cgroupParent,
		Memory:               int64(o.memory),
		MemoryReservation:    int64(o.memoryReservation),
		MemorySwap:           int64(o.memorySwap),
		MemorySwappiness:     &swappiness,
		OomKillDisable:       &oomKillDisable,
		NanoCPUs:             int64(o.cpus),
		CPUCount:             o.cpuCount,
		CPUPercent:           o.cpuPercent,
		CPUShares:            o.cpuShares,
		CPUPeriod:            o.cpuPeriod,
		CPUQuota:             o.cpuQuota,
		CPURealtimePeriod:    o.cpuRtPeriod,
		CPURealtimeRuntime:   o.cpuRtRuntime,
		CpusetCpus:           o.cpusetCpus,
		CpusetMems:           o.cpusetMems,
		PidsLimit:            &pidsLimit,
		BlkioWeight:          o.blkioWeight,
		BlkioWeightDevice:    nonNil(o.blkioWeightDevice.values),
		BlkioDeviceReadBps:   nonNil(o.deviceReadBps.values),
		BlkioDeviceWriteBps:  nonNil(o.deviceWriteBps.values),
		BlkioDeviceReadIOps:  nonNil(o.deviceReadIOps.values),
		BlkioDeviceWriteIOps: nonNil(o.deviceWriteIOps.values),
		Ulimits:              nonNil(o.ulimits.values),
		DeviceCgroupRules:    o.deviceCgroupRules.values,
		Devices:              devices,
		DeviceRequests:       deviceRequests,
	}

	cfg := &container.Config{
		Hostname:     o.hostname,
		Domainname:   o.domainname,
		ExposedPorts: exposed,
		User:         o.user,
		Tty:          o.tty,
		OpenStdin:    o.stdin,
		AttachStdin:  attachStdin,
		AttachStdout: attachStdout,
		AttachStderr: attachStderr,
		Env:          env,
		Cmd:          cmdOrNil(o.args),
		Image:        o.image,
		Volumes:      volumes,
		Entrypoint:   entrypoint,
		WorkingDir:   o.workdir,
		Labels:       kvToMap(labels),
		StopSignal:   o.stopSignal,
		Healthcheck:  health,
	}
	if fl.Changed("stop-timeout") {
		st := o.stopTimeout
		cfg.StopTimeout = &st
	}
	netMode := "default"
	if targets := o.networkTargets(); len(targets) > 0 {
		netMode = targets[0].Target
	}
	hc := &container.HostConfig{
		Binds:           binds,
		ContainerIDFile: o.cidFile,
		OomScoreAdj:     o.oomScoreAdj,
		AutoRemove:      o.rm,
		Privileged:      o.privileged,
		PortBindings:    bindings,
		Links:           o.links.values,
		PublishAllPorts: o.publishAll,
		DNS:             dns,
		DNSSearch:       orEmpty(o.dnsSearch.values),
		DNSOptions:      orEmpty(o.dnsOptions.values),
		ExtraHosts:      o.extraHosts.values,
		VolumesFrom:     o.volumesFrom.values,
		IpcMode:         container.IpcMode(o.ipc),
		NetworkMode:     container.NetworkMode(netMode),
		PidMode:         container.PidMode(o.pid),
		UTSMode:         container.UTSMode(o.uts),
		UsernsMode:      container.UsernsMode(o.userns),
		CgroupnsMode:    container.CgroupnsMode(o.cgroupns),
		CapAdd:          o.capAdd.values,
		CapDrop:         o.capDrop.values,
		GroupAdd:        o.groupAdd.values,
		RestartPolicy:   restart,
		SecurityOpt:     secOpts,
		StorageOpt:      storageOpts,
		ReadonlyRootfs:  o.readOnly,
		LogConfig:       container.LogConfig{Type: o.logDriver, Config: logOpts},
		VolumeDriver:    o.volumeDriver,
		Isolation:       container.Isolation(o.isolation),
		ShmSize:         int64(o.shmSize),
		Resources:       resources,
		Tmpfs:           tmpfs,
		Sysctls:         o.sysctls.values,
		Runtime:         o.runtime,
		Mounts:          mounts,
		MaskedPaths:     maskedPaths,
		ReadonlyPaths:   readonlyPaths,
		Annotations:     o.annotations.values,
	}
	if o.rm && restart.Name != "" && restart.Name != container.RestartPolicyDisabled {
		return nil, errors.New("conflicting options: cannot specify both --restart and --rm")
	}
	if fl.Changed("init") {
		in := o.init
		hc.Init = &in
	}
	// With stdin attached, close it when the client disconnects.
	if cfg.OpenStdin && cfg.AttachStdin {
		cfg.StdinOnce = true
	}
	eps, err := o.parseNetworks()
	if err != nil {
		return nil, err
	}
	return &containerConfig{Config: cfg, HostConfig: hc, NetworkingConfig: &network.NetworkingConfig{EndpointsConfig: eps}}, nil
}

// nonNil sends [] rather than null, as docker's list options do.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func cmdOrNil(args []string) []string {
	if len(args) == 0 {
		return nil
	}
	return args
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// validNamespaceMode accepts "", "host" and "container:<id>" (pid only).
func validNamespaceMode(m string, allowContainer bool) bool {
	if m == "" || m == "host" {
		return true
	}
	if allowContainer {
		if id, ok := strings.CutPrefix(m, "container:"); ok && id != "" {
			return true
		}
	}
	return false
}

// parseRestartPolicy reads "no", "always", "unless-stopped", "on-failure[:N]".
func parseRestartPolicy(p string) (container.RestartPolicy, error) {
	if p == "" {
		return container.RestartPolicy{}, nil
	}
	name, count, ok := strings.Cut(p, ":")
	if ok && name == "" {
		return container.RestartPolicy{}, errors.New("invalid restart policy format: no policy provided before colon")
	}
	n := 0
	if count != "" {
		c, err := strconv.Atoi(count)
		if err != nil {
			return container.RestartPolicy{}, errors.New("invalid restart policy format: maximum retry count must be an integer")
		}
		n = c
	}
	return container.RestartPolicy{Name: container.RestartPolicyMode(name), MaximumRetryCount: n}, nil
}

// splitVolumeSpec splits "[src:]dst[:mode]" (Linux rules only).
func splitVolumeSpec(v string) (src, dst string, err error) {
	parts := strings.Split(v, ":")
	switch len(parts) {
	case 1:
		dst = parts[0]
	case 2:
		if isVolumeMode(parts[1]) {
			dst = parts[0]
		} else {
			src, dst = parts[0], parts[1]
		}
	case 3:
		src, dst = parts[0], parts[1]
		if !isVolumeMode(parts[2]) {
			return "", "", fmt.Errorf("invalid mode: %s", parts[2])
		}
	default:
		return "", "", fmt.Errorf("invalid spec: %s: too many colons", v)
	}
	if dst == "" {
		return "", "", fmt.Errorf("invalid spec: %s: empty section between colons", v)
	}
	if !strings.HasPrefix(dst, "/") {
		return "", "", fmt.Errorf("invalid volume specification: '%s': invalid mount config for type \"volume\": invalid mount path: '%s' mount path must be absolute", v, dst)
	}
	return src, dst, nil
}

func isVolumeMode(s string) bool {
	if s == "" {
		return false
	}
	for _, m := range strings.Split(s, ",") {
		switch m {
		case "ro", "rw", "z", "Z", "nocopy", "shared", "rshared", "slave", "rslave", "private", "rprivate",
			"consistent", "cached", "delegated":
		default:
			return false
		}
	}
	return true
}

// parsePortSpecs reads -p "[ip:][hostPort:]containerPort[/proto]" with
// ranges, returning the exposed ports and their bindings.
func parsePortSpecs(specs []string) (network.PortSet, network.PortMap, error) {
	exposed := network.PortSet{}
	bindings := network.PortMap{}
	for _, raw := range specs {
		spec := raw
		proto := "tcp"
		if i := strings.LastIndex(spec, "/"); i >= 0 {
			proto = strings.ToLower(spec[i+1:])
			spec = spec[:i]
			if proto == "" {
				return nil, nil, fmt.Errorf("invalid proto: %s", raw)
			}
		}
		var ip, hostPort, containerPort string
		// IPv6 in brackets: [::1]:80:80
		if strings.HasPrefix(spec, "[") {
			end := strings.Index(spec, "]")
			if end < 0 {
				return nil, nil, fmt.Errorf("invalid IP address: %s", raw)
			}
			ip = spec[1:end]
			rest := strings.TrimPrefix(spec[end+1:], ":")
			hostPort, containerPort, _ = strings.Cut(rest, ":")
			if containerPort == "" {
				return nil, nil, fmt.Errorf("no port specified: %s<empty>", raw)
			}
		} else {
			parts := strings.Split(spec, ":")
			switch len(parts) {
			case 1:
				containerPort = parts[0]
			case 2:
				hostPort, containerPort = parts[0], parts[1]
			case 3:
				ip, hostPort, containerPort = parts[0], parts[1], parts[2]
			default:
				return nil, nil, fmt.Errorf("invalid port format: %s", raw)
			}
		}
		if containerPort == "" {
			return nil, nil, fmt.Errorf("no port specified: %s<empty>", raw)
		}
		var hostIP netip.Addr
		if ip != "" {
			a, err := netip.ParseAddr(ip)
			if err != nil {
				return nil, nil, fmt.Errorf("invalid IP address: %s", ip)
			}
			hostIP = a
		}
		cStart, cEnd, err := parsePortRange(containerPort)
		if err != nil {
			return nil, nil, fmt.Errorf("invalid containerPort: %s", containerPort)
		}
		var hStart, hEnd uint64
		if hostPort != "" {
			hStart, hEnd, err = parsePortRange(hostPort)
			if err != nil {
				return nil, nil, fmt.Errorf("invalid hostPort: %s", hostPort)
			}
			if hEnd-hStart != cEnd-cStart && hEnd != hStart {
				return nil, nil, fmt.Errorf("invalid ranges specified for container and host Ports: %s and %s", containerPort, hostPort)
			}
		}
		for i := uint64(0); i <= cEnd-cStart; i++ {
			p, ok := network.PortFrom(uint16(cStart+i), network.IPProtocol(proto))
			if !ok {
				return nil, nil, fmt.Errorf("invalid proto: %s", proto)
			}
			hp := ""
			if hostPort != "" {
				if hEnd != hStart && hEnd-hStart == cEnd-cStart {
					hp = strconv.FormatUint(hStart+i, 10)
				} else if hEnd != hStart {
					hp = fmt.Sprintf("%d-%d", hStart, hEnd)
				} else {
					hp = strconv.FormatUint(hStart, 10)
				}
			}
			exposed[p] = struct{}{}
			bindings[p] = append(bindings[p], network.PortBinding{HostIP: hostIP, HostPort: hp})
		}
	}
	return exposed, bindings, nil
}

func parsePortRange(s string) (uint64, uint64, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	start, err := strconv.ParseUint(lo, 10, 16)
	if err != nil {
		return 0, 0, err
	}
	if !isRange {
		return start, start, nil
	}
	end, err := strconv.ParseUint(hi, 10, 16)
	if err != nil || end < start {
		return 0, 0, fmt.Errorf("invalid range: %s", s)
	}
	return start, end, nil
}

// parseDevice reads --device host[:container[:perms]].
func parseDevice(d string) (container.DeviceMapping, error) {
	parts := strings.Split(d, ":")
	dm := container.DeviceMapping{CgroupPermissions: "rwm"}
	switch len(parts) {
	case 1:
		dm.PathOnHost, dm.PathInContainer = parts[0], parts[0]
	case 2:
		dm.PathOnHost = parts[0]
		if validDevicePerms(parts[1]) {
			dm.PathInContainer, dm.CgroupPermissions = parts[0], parts[1]
		} else {
			dm.PathInContainer = parts[1]
		}
	case 3:
		if !validDevicePerms(parts[2]) {
			return dm, fmt.Errorf("invalid device mode: %s", parts[2])
		}
		dm.PathOnHost, dm.PathInContainer, dm.CgroupPermissions = parts[0], parts[1], parts[2]
	default:
		return dm, fmt.Errorf("invalid device specification: %s", d)
	}
	if !strings.HasPrefix(dm.PathInContainer, "/") {
		return dm, fmt.Errorf("%s is not an absolute path", dm.PathInContainer)
	}
	return dm, nil
}

func validDevicePerms(s string) bool {
	if s == "" || len(s) > 3 {
		return false
	}
	return strings.Trim(s, "rwm") == ""
}

// parseSecurityOpts applies docker's client-side rewrites: "seccomp=<file>"
// is sent as the compacted profile JSON, and "systempaths=unconfined"
// becomes empty MaskedPaths/ReadonlyPaths.
func parseSecurityOpts(in []string) (out, masked, readonly []string, err error) {
	for _, opt := range in {
		if opt == "systempaths=unconfined" {
			masked, readonly = []string{}, []string{}
			continue
		}
		if opt == "no-new-privileges" {
			out = append(out, opt)
			continue
		}
		k, v, ok := strings.Cut(opt, "=")
		if !ok {
			k, v, ok = strings.Cut(opt, ":")
			if !ok {
				return nil, nil, nil, fmt.Errorf("Invalid --security-opt: %q", opt) //lint:ignore ST1005 docker's wording
			}
			opt = k + "=" + v
		}
		if k == "seccomp" && v != "unconfined" && v != "builtin" {
			data, rerr := os.ReadFile(v)
			if rerr != nil {
				return nil, nil, nil, fmt.Errorf("opening seccomp profile (%s) failed: %w", v, rerr)
			}
			var b bytes.Buffer
			if cerr := json.Compact(&b, data); cerr != nil {
				return nil, nil, nil, fmt.Errorf("compacting json for seccomp profile (%s) failed: %w", v, cerr)
			}
			opt = "seccomp=" + b.String()
		}
		out = append(out, opt)
	}
	return out, masked, readonly, nil
}

// parseGPUs supports "all", a count, or "device=0,1".
func parseGPUs(v string) (container.DeviceRequest, error) {
	dr := container.DeviceRequest{Capabilities: [][]string{{"gpu"}}}
	switch {
	case v == "all":
		dr.Count = -1
	case strings.HasPrefix(v, "device="):
		dr.DeviceIDs = strings.Split(strings.TrimPrefix(v, "device="), ",")
	default:
		n, err := strconv.Atoi(strings.TrimPrefix(v, "count="))
		if err != nil {
			return dr, fmt.Errorf("invalid count (%s): value must be either \"all\" or an integer: %w", v, err)
		}
		dr.Count = n
	}
	return dr, nil
}

// parseMounts reads --mount's CSV syntax with docker's keys.
func parseMounts(specs []string) ([]mount.Mount, error) {
	var out []mount.Mount
	for _, spec := range specs {
		r := csv.NewReader(strings.NewReader(spec))
		fields, err := r.Read()
		if err != nil {
			return nil, err
		}
		m := mount.Mount{Type: mount.TypeVolume}
		var volOpts *mount.VolumeOptions
		var bindOpts *mount.BindOptions
		var tmpOpts *mount.TmpfsOptions
		vol := func() *mount.VolumeOptions {
			if volOpts == nil {
				volOpts = &mount.VolumeOptions{}
			}
			return volOpts
		}
		bind := func() *mount.BindOptions {
			if bindOpts == nil {
				bindOpts = &mount.BindOptions{}
			}
			return bindOpts
		}
		tmp := func() *mount.TmpfsOptions {
			if tmpOpts == nil {
				tmpOpts = &mount.TmpfsOptions{}
			}
			return tmpOpts
		}
		for _, f := range fields {
			key, val, hasVal := strings.Cut(f, "=")
			key = strings.ToLower(key)
			boolVal := func() (bool, error) {
				if !hasVal {
					return true, nil
				}
				b, err := strconv.ParseBool(val)
				if err != nil {
					return false, fmt.Errorf("invalid value for %s: %s", key, val)
				}
				return b, nil
			}
			if !hasVal && key != "readonly" && key != "ro" && key != "volume-nocopy" && key != "bind-nonrecursive" {
				return nil, fmt.Errorf("invalid field '%s' must be a key=value pair", f)
			}
			switch key {
			case "type":
				m.Type = mount.Type(strings.ToLower(val))
			case "source", "src":
				m.Source = val
			case "target", "dst", "destination":
				m.Target = val
			case "readonly", "ro":
				if m.ReadOnly, err = boolVal(); err != nil {
					return nil, err
				}
			case "consistency":
				m.Consistency = mount.Consistency(val)
			case "bind-propagation":
				bind().Propagation = mount.Propagation(strings.ToLower(val))
			case "bind-nonrecursive":
				if bind().NonRecursive, err = boolVal(); err != nil {
					return nil, err
				}
			case "bind-create-mountpoint":
				if bind().CreateMountpoint, err = boolVal(); err != nil {
					return nil, err
				}
			case "volume-nocopy":
				if vol().NoCopy, err = boolVal(); err != nil {
					return nil, err
				}
			case "volume-subpath":
				vol().Subpath = val
			case "volume-label":
				k, v, _ := strings.Cut(val, "=")
				if vol().Labels == nil {
					volOpts.Labels = map[string]string{}
				}
				volOpts.Labels[k] = v
			case "volume-driver":
				if vol().DriverConfig == nil {
					volOpts.DriverConfig = &mount.Driver{}
				}
				volOpts.DriverConfig.Name = val
			case "volume-opt":
				if vol().DriverConfig == nil {
					volOpts.DriverConfig = &mount.Driver{}
				}
				if volOpts.DriverConfig.Options == nil {
					volOpts.DriverConfig.Options = map[string]string{}
				}
				k, v, _ := strings.Cut(val, "=")
				volOpts.DriverConfig.Options[k] = v
			case "tmpfs-size":
				n, err := units.RAMInBytes(val)
				if err != nil {
					return nil, fmt.Errorf("invalid value for %s: %s", key, val)
				}
				tmp().SizeBytes = n
			case "tmpfs-mode":
				n, err := strconv.ParseUint(val, 8, 32)
				if err != nil {
					return nil, fmt.Errorf("invalid value for %s: %s", key, val)
				}
				tmp().Mode = os.FileMode(n)
			default:
				return nil, fmt.Errorf("unexpected key '%s' in '%s'", key, f)
			}
		}
		if m.Target == "" {
			return nil, errors.New("target is required")
		}
		if volOpts != nil && m.Type != mount.TypeVolume {
			return nil, fmt.Errorf("cannot mix 'volume-*' options with mount type '%s'", m.Type)
		}
		if bindOpts != nil && m.Type != mount.TypeBind {
			return nil, fmt.Errorf("cannot mix 'bind-*' options with mount type '%s'", m.Type)
		}
		if tmpOpts != nil && m.Type != mount.TypeTmpfs {
			return nil, fmt.Errorf("cannot mix 'tmpfs-*' options with mount type '%s'", m.Type)
		}
		m.VolumeOptions, m.BindOptions, m.TmpfsOptions = volOpts, bindOpts, tmpOpts
		out = append(out, m)
	}
	return out, nil
}

// networkTarget is one --network value (simple name or advanced CSV form).
type networkTarget struct {
	Target       string
	Aliases      []string
	DriverOpts   map[string]string
	Links        []string
	IPv4, IPv6   string
	MacAddress   string
	LinkLocalIPs []string
	GwPriority   int
}

func (o *containerOptions) networkTargets() []networkTarget {
	var out []networkTarget
	for _, v := range o.networks.values {
		if !strings.Contains(v, "=") {
			out = append(out, networkTarget{Target: v})
			continue
		}
		var n networkTarget
		r := csv.NewReader(strings.NewReader(v))
		fields, _ := r.Read()
		for _, f := range fields {
			k, val, _ := strings.Cut(f, "=")
			switch strings.ToLower(k) {
			case "name":
				n.Target = val
			case "alias":
				n.Aliases = append(n.Aliases, val)
			case "ip":
				n.IPv4 = val
			case "ip6":
				n.IPv6 = val
			case "mac-address":
				n.MacAddress = val
			case "link-local-ip":
				n.LinkLocalIPs = append(n.LinkLocalIPs, val)
			case "gw-priority":
				n.GwPriority, _ = strconv.Atoi(val)
			case "driver-opt":
				dk, dv, _ := strings.Cut(strings.ToLower(val), "=")
				if n.DriverOpts == nil {
					n.DriverOpts = map[string]string{}
				}
				n.DriverOpts[dk] = dv
			}
		}
		out = append(out, n)
	}
	return out
}

func isUserDefinedNetwork(n string) bool {
	switch n {
	case "default", "bridge", "host", "none":
		return false
	}
	return !strings.HasPrefix(n, "container:")
}

// parseNetworks builds EndpointsConfig: the first network carries the
// legacy flags (--network-alias, --ip, --link …); a lone network with no
// options sends no endpoint config at all, as docker does.
func (o *containerOptions) parseNetworks() (map[string]*network.EndpointSettings, error) {
	targets := o.networkTargets()
	eps := map[string]*network.EndpointSettings{}
	if len(targets) == 0 {
		targets = []networkTarget{{Target: "default"}}
		if err := o.applyLegacyNetFlags(&targets[0]); err != nil {
			return nil, err
		}
		ep, err := endpointFor(targets[0])
		if err != nil {
			return nil, err
		}
		eps["default"] = ep
		return eps, nil
	}
	userDefined, builtin := false, false
	for i := range targets {
		n := targets[i]
		if isUserDefinedNetwork(n.Target) {
			userDefined = true
		} else {
			builtin = true
		}
		if i == 0 {
			if err := o.applyLegacyNetFlags(&n); err != nil {
				return nil, err
			}
		}
		ep, err := endpointFor(n)
		if err != nil {
			return nil, err
		}
		if _, dup := eps[n.Target]; dup {
			return nil, fmt.Errorf("network %q is specified multiple times", n.Target)
		}
		if i == 0 && len(targets) == 1 && isZeroEndpoint(ep) {
			continue
		}
		eps[n.Target] = ep
	}
	if userDefined && builtin {
		return nil, errors.New("conflicting options: cannot attach both user-defined and non-user-defined network-modes")
	}
	return eps, nil
}

func isZeroEndpoint(ep *network.EndpointSettings) bool {
	return ep.IPAMConfig == nil && len(ep.Links) == 0 && len(ep.Aliases) == 0 && len(ep.DriverOpts) == 0 &&
		ep.GwPriority == 0 && len(ep.MacAddress) == 0
}

func (o *containerOptions) applyLegacyNetFlags(n *networkTarget) error {
	if len(n.Aliases) > 0 && o.aliases.Len() > 0 {
		return errors.New("conflicting options: cannot specify both --network-alias and per-network alias")
	}
	if n.IPv4 != "" && o.ipv4 != "" {
		return errors.New("conflicting options: cannot specify both --ip and per-network IPv4 address")
	}
	if n.IPv6 != "" && o.ipv6 != "" {
		return errors.New("conflicting options: cannot specify both --ip6 and per-network IPv6 address")
	}
	if o.aliases.Len() > 0 {
		n.Aliases = append([]string(nil), o.aliases.values...)
	}
	if isUserDefinedNetwork(n.Target) && o.links.Len() > 0 {
		n.Links = append([]string(nil), o.links.values...)
	}
	if o.ipv4 != "" {
		n.IPv4 = o.ipv4
	}
	if o.ipv6 != "" {
		n.IPv6 = o.ipv6
	}
	if o.macAddress != "" {
		n.MacAddress = o.macAddress
	}
	if o.linkLocalIPs.Len() > 0 {
		n.LinkLocalIPs = o.linkLocalIPs.values
	}
	return nil
}

func endpointFor(n networkTarget) (*network.EndpointSettings, error) {
	if strings.TrimSpace(n.Target) == "" {
		return nil, errors.New("no name set for network")
	}
	if !isUserDefinedNetwork(n.Target) {
		if len(n.Aliases) > 0 {
			return nil, errors.New("network-scoped aliases are only supported for user-defined networks")
		}
		if len(n.Links) > 0 {
			return nil, errors.New("links are only supported for user-defined networks")
		}
	}
	ep := &network.EndpointSettings{GwPriority: n.GwPriority, Links: n.Links, DriverOpts: n.DriverOpts}
	ep.Aliases = append(ep.Aliases, n.Aliases...)
	if n.IPv4 != "" || n.IPv6 != "" || len(n.LinkLocalIPs) > 0 {
		ipam := &network.EndpointIPAMConfig{}
		if n.IPv4 != "" {
			a, err := netip.ParseAddr(n.IPv4)
			if err != nil || !a.Is4() {
				return nil, fmt.Errorf("invalid IPv4 address: %s", n.IPv4)
			}
			ipam.IPv4Address = a
		}
		if n.IPv6 != "" {
			a, err := netip.ParseAddr(n.IPv6)
			if err != nil {
				return nil, fmt.Errorf("invalid IPv6 address: %s", n.IPv6)
			}
			ipam.IPv6Address = a
		}
		for _, l := range n.LinkLocalIPs {
			a, err := netip.ParseAddr(l)
			if err != nil {
				return nil, fmt.Errorf("invalid link-local IP address: %s", l)
			}
			ipam.LinkLocalIPs = append(ipam.LinkLocalIPs, a)
		}
		ep.IPAMConfig = ipam
	}
	if n.MacAddress != "" {
		ma, err := net.ParseMAC(strings.TrimSpace(n.MacAddress))
		if err != nil {
			return nil, fmt.Errorf("%s is not a valid mac address", n.MacAddress)
		}
		ep.MacAddress = network.HardwareAddr(ma)
	}
	return ep, nil
}
