package daemon

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"

	"github.com/containerd/errdefs"
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
