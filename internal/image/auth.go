package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
)

// Credential is what a registry login yields. Username+Password are used for
// basic auth and to obtain bearer tokens; IdentityToken is an OAuth2 refresh
// token; RegistryToken is sent as a bearer token as is.
type Credential struct {
	Username      string
	Password      string
	IdentityToken string
	RegistryToken string
}

// CredentialFunc returns the credential for a registry host ("docker.io",
// "127.0.0.1:5000"). A zero Credential means anonymous.
type CredentialFunc func(host string) (Credential, error)

// dockerHubConfigKey is the key docker login writes for Docker Hub.
const dockerHubConfigKey = "https://index.docker.io/v1/"

// ConfigFileCredentials reads auths from a docker config.json (the format
// `docker login` writes: {"auths":{"host":{"auth":"base64(user:pass)"}}}).
// A missing file means no credentials. The file is read on every call so a
// login by the CLI takes effect without restarting the daemon.
func ConfigFileCredentials(path string) CredentialFunc {
	return func(host string) (Credential, error) {
		if path == "" {
			return Credential{}, nil
		}
		b, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			return Credential{}, nil
		}
		if err != nil {
			return Credential{}, fmt.Errorf("read credentials: %w", err)
		}
		var cfg struct {
			Auths map[string]authn.AuthConfig `json:"auths"`
		}
		if err := json.Unmarshal(b, &cfg); err != nil {
			return Credential{}, fmt.Errorf("parse credentials %s: %w", path, err)
		}
		for k, a := range cfg.Auths {
			if configKeyHost(k) == host {
				return Credential{Username: a.Username, Password: a.Password, IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken}, nil
			}
		}
		return Credential{}, nil
	}
}

// configKeyHost maps a config.json auths key ("https://index.docker.io/v1/",
// "http://host:5000", "host:5000") to the registry host berth uses.
func configKeyHost(k string) string {
	if k == dockerHubConfigKey || k == "index.docker.io" || k == "registry-1.docker.io" {
		return "docker.io"
	}
	k = strings.TrimPrefix(strings.TrimPrefix(k, "https://"), "http://")
	if i := strings.IndexByte(k, '/'); i >= 0 {
		k = k[:i]
	}
	if k == "index.docker.io" || k == "registry-1.docker.io" {
		return "docker.io"
	}
	return k
}

type credAuthenticator struct{ c Credential }

func (a credAuthenticator) Authorization() (*authn.AuthConfig, error) {
	return &authn.AuthConfig{Username: a.c.Username, Password: a.c.Password, IdentityToken: a.c.IdentityToken, RegistryToken: a.c.RegistryToken}, nil
}

func authenticator(fn CredentialFunc, host string) (authn.Authenticator, error) {
	if fn == nil {
		return authn.Anonymous, nil
	}
	c, err := fn(host)
	if err != nil {
		return nil, err
	}
	if c == (Credential{}) {
		return authn.Anonymous, nil
	}
	return credAuthenticator{c}, nil
}
