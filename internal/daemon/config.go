package daemon

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strconv"

	"github.com/containerd/errdefs"
	"github.com/docker/go-units"
)

// Config is the daemon's configuration: flags merged over daemon.json, with
// docker's keys where they apply.
type Config struct {
	DataRoot           string              `json:"data-root"`
	ExecRoot           string              `json:"exec-root"`
	Hosts              []string            `json:"hosts"`
	InsecureRegistries []string            `json:"insecure-registries"`
	RegistryMirrors    []string            `json:"registry-mirrors"`
	Mirrors            map[string][]string `json:"mirrors"` // berth: per-registry mirrors
	LogDriver          string              `json:"log-driver"`
	LogOpts            map[string]string   `json:"log-opts"`
	DefaultRuntime     string              `json:"default-runtime"`
	Runtimes           map[string]Runtime  `json:"runtimes"`
	Debug              bool                `json:"debug"`
	StorageDriver      string              `json:"storage-driver"`
	// Networking (docker's keys): the default bridge's device ("none": no
	// default network) and address, its MTU, and the default --dns servers.
	Bridge string   `json:"bridge"`
	BIP    string   `json:"bip"`
	MTU    int      `json:"mtu"`
	DNS    []string `json:"dns"`
	// UsernsRemap is docker's "userns-remap": "default" (user berth), or a
	// user, user:group, uid or uid:gid with ranges in /etc/subuid and
	// /etc/subgid (userns.go).
	UsernsRemap string `json:"userns-remap"`

	// Binaries; empty means next to the berth executable, then PATH.
	MonitorPath string `json:"-"`
	InitPath    string `json:"-"`
}

// Runtime is an OCI runtime the daemon can run containers with.
type Runtime struct {
	Path string   `json:"path"`
	Args []string `json:"runtimeArgs,omitempty"`
}

// LoadConfigFile reads daemon.json into c; fields already set by flags win
// (the caller applies flags after). A missing file is not an error.
func LoadConfigFile(path string, c *Config) error {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	if err := json.Unmarshal(b, c); err != nil {
		return fmt.Errorf("invalid daemon configuration file %s: %v: %w", path, err, errdefs.ErrInvalidArgument)
	}
	return nil
}

// SetDefaults fills what is unset.
func (c *Config) SetDefaults() {
	if c.DataRoot == "" {
		c.DataRoot = "/var/lib/berth"
	}
	if c.ExecRoot == "" {
		c.ExecRoot = "/run/berth"
	}
	if c.LogDriver == "" {
		c.LogDriver = "json-file"
	}
	if c.DefaultRuntime == "" {
		c.DefaultRuntime = "berth"
	}
}

// logSettings are a container's resolved log driver options.
type logSettings struct {
	Driver   string
	MaxSize  int64
	MaxFiles int
	Compress bool // gzip rotated files (the monitor does, see monitor.c)
}

// resolveLog merges a container's log config over the daemon's and
// validates it as docker does.
func resolveLog(driver string, opts map[string]string, d *Config) (logSettings, error) {
	ls := logSettings{Driver: driver, MaxFiles: 1}
	if ls.Driver == "" {
		ls.Driver = d.LogDriver
		if len(opts) == 0 {
			opts = d.LogOpts
		}
	}
	switch ls.Driver {
	case "json-file", "none":
	case "local":
		// local keeps docker's rotation defaults (20 MB × 5); berth stores
		// it as json-file lines rather than docker's protobuf frames.
		ls.MaxSize, ls.MaxFiles, ls.Compress = 20*1024*1024, 5, true
	default:
		return ls, fmt.Errorf("logger: no log driver named '%s' is registered: %w", ls.Driver, errdefs.ErrInvalidArgument)
	}
	for k, v := range opts {
		switch k {
		case "max-size":
			n, err := units.RAMInBytes(v)
			if err != nil || n <= 0 {
				return ls, fmt.Errorf("invalid value for log-opt max-size %q: %w", v, errdefs.ErrInvalidArgument)
			}
			ls.MaxSize = n
		case "max-file":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return ls, fmt.Errorf("invalid value for max-file: %s: %w", v, errdefs.ErrInvalidArgument)
			}
			ls.MaxFiles = n
		case "compress":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return ls, fmt.Errorf("invalid value for compress: %s: %w", v, errdefs.ErrInvalidArgument)
			}
			ls.Compress = b
		case "labels", "env", "env-regex", "tag", "mode", "max-buffer-size":
		default:
			return ls, fmt.Errorf("unknown log opt '%s' for %s log driver: %w", k, ls.Driver, errdefs.ErrInvalidArgument)
		}
	}
	if ls.MaxFiles > 1 && ls.MaxSize == 0 {
		return ls, fmt.Errorf("max-file cannot be set without max-size: %w", errdefs.ErrInvalidArgument)
	}
	if ls.Compress && (ls.MaxFiles < 2 || ls.MaxSize == 0) {
		if _, set := opts["compress"]; set {
			return ls, fmt.Errorf("compress cannot be true when max-file is less than 2 or max-size is not set: %w", errdefs.ErrInvalidArgument)
		}
		ls.Compress = false // local's default with max-file=1
	}
	return ls, nil
}
