package daemon

import (
	"maps"
	"testing"

	"github.com/moby/moby/api/types/container"
)

// dockerd's mergeAndVerifyLogConfig: the daemon's log-opts fill a
// container of the daemon's driver, key by key.
func TestMergeLogConfig(t *testing.T) {
	d := &Daemon{cfg: Config{LogDriver: "local", LogOpts: map[string]string{"max-size": "10k", "max-file": "2"}}}
	for _, tc := range []struct {
		in   container.LogConfig
		want container.LogConfig
	}{
		{container.LogConfig{}, container.LogConfig{Type: "local", Config: map[string]string{"max-size": "10k", "max-file": "2"}}},
		{container.LogConfig{Type: "local", Config: map[string]string{"max-size": "1m"}}, container.LogConfig{Type: "local", Config: map[string]string{"max-size": "1m", "max-file": "2"}}},
		{container.LogConfig{Type: "json-file"}, container.LogConfig{Type: "json-file", Config: map[string]string{}}},
	} {
		lc := tc.in
		if err := d.mergeLogConfig(&lc); err != nil || lc.Type != tc.want.Type || !maps.Equal(lc.Config, tc.want.Config) {
			t.Errorf("mergeLogConfig(%+v) = %+v, %v; want %+v", tc.in, lc, err, tc.want)
		}
	}
	lc := container.LogConfig{Type: "local", Config: map[string]string{"tag": "x"}}
	if err := d.mergeLogConfig(&lc); err == nil || err.Error() != "unknown log opt 'tag' for log driver local" {
		t.Errorf("local with tag: %v", err)
	}
}

// Options and messages as dockerd 20.10 gives them.
func TestResolveLogOptions(t *testing.T) {
	cfg := &Config{LogDriver: "json-file"}
	ls, err := resolveLog("local", map[string]string{}, cfg)
	if err != nil || ls != (logSettings{Driver: "local", MaxSize: 20 << 20, MaxFiles: 5, Compress: true}) {
		t.Errorf("local defaults: %+v %v", ls, err)
	}
	for _, opts := range []map[string]string{{"labels": "a"}, {"tag": "x", "env": "A", "env-regex": ".*", "labels-regex": "."}, {"mode": "non-blocking", "max-buffer-size": "1m"}} {
		if _, err := resolveLog("json-file", opts, cfg); err != nil {
			t.Errorf("json-file %v: %v", opts, err)
		}
	}
	if _, err := resolveLog("none", map[string]string{"anything": "x"}, cfg); err != nil {
		t.Errorf("none checks no options: %v", err)
	}
	for _, tc := range []struct {
		driver string
		opts   map[string]string
		msg    string
	}{
		{"local", map[string]string{"labels": "a"}, "unknown log opt 'labels' for log driver local"},
		{"local", map[string]string{"env": "A"}, "unknown log opt 'env' for log driver local"},
		{"json-file", map[string]string{"foo": "bar"}, "unknown log opt 'foo' for json-file log driver"},
		{"local", map[string]string{"mode": "bad"}, "logger: logging mode not supported: bad"},
		{"json-file", map[string]string{"max-buffer-size": "1m"}, "logger: max-buffer-size option is only supported with 'mode=non-blocking'"},
		{"syslog", nil, "logger: no log driver named 'syslog' is registered"},
	} {
		if _, err := resolveLog(tc.driver, tc.opts, cfg); err == nil || err.Error() != tc.msg {
			t.Errorf("%s %v: %v, want %q", tc.driver, tc.opts, err, tc.msg)
		}
	}
}

// dockerd's inspect shows no LogPath for local.
func TestInspectLogPath(t *testing.T) {
	c := &Container{record: record{LogPath: "/x/id-json.log", HostConfig: &container.HostConfig{LogConfig: container.LogConfig{Type: "local"}}}}
	if p := inspectLogPath(c); p != "" {
		t.Errorf("local: %q", p)
	}
	c.HostConfig.LogConfig.Type = "json-file"
	if p := inspectLogPath(c); p != "/x/id-json.log" {
		t.Errorf("json-file: %q", p)
	}
}
