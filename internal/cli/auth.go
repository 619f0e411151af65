package cli

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/moby/api/pkg/authconfig"
	"github.com/moby/moby/api/types/registry"
)

// Docker Hub's key in config.json, kept for compatibility with docker's file.
const indexServer = "https://index.docker.io/v1/"

// configFile is the subset of docker's config.json that berth uses:
//
//	{"auths": {"<registry>": {"auth": base64("user:pass")}}, "detachKeys": "…", …}
//
// Unknown keys are preserved when the file is rewritten.
type configFile struct {
	path  string
	raw   map[string]json.RawMessage
	Auths map[string]authEntry
	// DetachKeys overrides the default ctrl-p,ctrl-q.
	DetachKeys string
	PsFormat   string
	ImgFormat  string
}

type authEntry struct {
	Auth          string `json:"auth,omitempty"`
	IdentityToken string `json:"identitytoken,omitempty"`
}

// config loads config.json lazily; a missing file is an empty config.
func (c *CLI) config() (*configFile, error) {
	cf := &configFile{path: filepath.Join(c.configPath(), "config.json"), raw: map[string]json.RawMessage{}, Auths: map[string]authEntry{}}
	data, err := os.ReadFile(cf.path)
	if errors.Is(err, os.ErrNotExist) {
		return cf, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, &cf.raw); err != nil {
		return nil, fmt.Errorf("loading config file %s: %w", cf.path, err)
	}
	if a, ok := cf.raw["auths"]; ok {
		if err := json.Unmarshal(a, &cf.Auths); err != nil {
			return nil, fmt.Errorf("loading config file %s: %w", cf.path, err)
		}
	}
	str := func(key string, dst *string) {
		if v, ok := cf.raw[key]; ok {
			_ = json.Unmarshal(v, dst)
		}
	}
	str("detachKeys", &cf.DetachKeys)
	str("psFormat", &cf.PsFormat)
	str("imagesFormat", &cf.ImgFormat)
	return cf, nil
}

func (cf *configFile) save() error {
	a, err := json.Marshal(cf.Auths)
	if err != nil {
		return err
	}
	cf.raw["auths"] = a
	data, err := json.MarshalIndent(cf.raw, "", "\t")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(cf.path), 0o700); err != nil {
		return err
	}
	tmp := cf.path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, cf.path)
}

// authFor returns the credentials stored for a registry host.
func (cf *configFile) authFor(reg string) registry.AuthConfig {
	key := reg
	if reg == "docker.io" || reg == "index.docker.io" || reg == "registry-1.docker.io" {
		key = indexServer
	}
	e, ok := cf.Auths[key]
	if !ok {
		for k, v := range cf.Auths {
			if strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(k, "https://"), "http://"), "/") == reg {
				e, ok = v, true
				break
			}
		}
	}
	ac := registry.AuthConfig{ServerAddress: key}
	if !ok {
		return ac
	}
	if dec, err := base64.StdEncoding.DecodeString(e.Auth); err == nil {
		user, pass, _ := strings.Cut(string(dec), ":")
		ac.Username, ac.Password = user, pass
	}
	ac.IdentityToken = e.IdentityToken
	return ac
}

// registryAuthHeader is the X-Registry-Auth value for a reference, or ""
// when no credentials are stored (docker then sends an empty auth).
func (c *CLI) registryAuthHeader(ref string) string {
	cf, err := c.config()
	if err != nil {
		return ""
	}
	ac := cf.authFor(registryHost(ref))
	if ac.Username == "" && ac.IdentityToken == "" {
		return ""
	}
	enc, err := authconfig.Encode(ac)
	if err != nil {
		return ""
	}
	return enc
}

// registryHost returns the registry part of a reference ("docker.io" if none).
func registryHost(ref string) string {
	first, _, ok := strings.Cut(ref, "/")
	if !ok {
		return "docker.io"
	}
	if strings.ContainsAny(first, ".:") || first == "localhost" {
		return first
	}
	return "docker.io"
}

// normalizeRef adds ":latest" to a reference without tag or digest, the
// name docker prints in "Unable to find image 'busybox:latest' locally".
func normalizeRef(ref string) string {
	if strings.Contains(ref, "@") {
		return ref
	}
	last := ref
	if i := strings.LastIndex(ref, "/"); i >= 0 {
		last = ref[i+1:]
	}
	if strings.Contains(last, ":") {
		return ref
	}
	return ref + ":latest"
}
