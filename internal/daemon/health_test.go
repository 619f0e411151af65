package daemon

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"go.etcd.io/bbolt"
)

func TestProbeCommand(t *testing.T) {
	for _, tc := range []struct {
		test  []string
		shell []string
		want  []string
	}{
		{nil, nil, nil},
		{[]string{"NONE"}, nil, nil},
		{[]string{"CMD"}, nil, nil},
		{[]string{"CMD", "curl", "-f", "http://x/"}, nil, []string{"curl", "-f", "http://x/"}},
		{[]string{"CMD-SHELL", "test -f /ok"}, nil, []string{"/bin/sh", "-c", "test -f /ok"}},
		{[]string{"CMD-SHELL", "test -f /ok"}, []string{"/bin/bash", "-ec"}, []string{"/bin/bash", "-ec", "test -f /ok"}},
	} {
		cfg := &container.Config{Shell: tc.shell}
		if tc.test != nil {
			cfg.Healthcheck = &container.HealthConfig{Test: tc.test}
		}
		if got := probeCommand(cfg); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("probeCommand(%q, shell %q) = %q, want %q", tc.test, tc.shell, got, tc.want)
		}
	}
}

func TestValidateHealthcheck(t *testing.T) {
	for _, tc := range []struct {
		h    container.HealthConfig
		want string
	}{
		{container.HealthConfig{Test: []string{"CMD", "true"}, Interval: time.Second}, ""},
		{container.HealthConfig{Test: []string{"NONE"}}, ""},
		{container.HealthConfig{Interval: time.Microsecond}, "Interval in Healthcheck cannot be less than 1ms"},
		{container.HealthConfig{Timeout: time.Microsecond}, "Timeout in Healthcheck cannot be less than 1ms"},
		{container.HealthConfig{StartPeriod: time.Microsecond}, "StartPeriod in Healthcheck cannot be less than 1ms"},
		{container.HealthConfig{StartInterval: time.Microsecond}, "StartInterval in Healthcheck cannot be less than 1ms"},
		{container.HealthConfig{Retries: -1}, "Retries in Healthcheck cannot be negative"},
		{container.HealthConfig{Test: []string{"EXEC", "x"}}, "unknown healthcheck type"},
	} {
		err := validateHealthcheck(&tc.h)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("validateHealthcheck(%+v) = %v, want %q", tc.h, err, tc.want)
		}
	}
}

// testDaemon is enough of a Daemon for recordHealth: a metadata file and
// the event bus.
func testDaemon(t *testing.T) *Daemon {
	db, err := bbolt.Open(filepath.Join(t.TempDir(), "db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	d := &Daemon{db: db, events: newEventBus(), log: slog.New(slog.NewTextHandler(os.Stderr, nil))}
	d.closeCtx, d.cancel = context.WithCancel(context.Background())
	return d
}

func TestRecordHealthTransitions(t *testing.T) {
	d := testDaemon(t)
	start := time.Now()
	c := &Container{}
	c.ID, c.Name = "c1", "/c1"
	c.Config = &container.Config{Healthcheck: &container.HealthConfig{Test: []string{"CMD", "x"}, Retries: 2, StartPeriod: 10 * time.Second}}
	c.State = State{Status: container.StateRunning, StartedAt: start, Health: &container.Health{Status: container.Starting}}
	_, live := d.events.subscribe(time.Time{})
	result := func(after time.Duration, code int) *container.HealthcheckResult {
		return &container.HealthcheckResult{Start: start.Add(after), End: start.Add(after), ExitCode: code}
	}
	// Failures inside the start period do not count while starting.
	d.recordHealth(c, result(time.Second, 1))
	d.recordHealth(c, result(2*time.Second, 1))
	if h := c.State.Health; h.Status != container.Starting || h.FailingStreak != 0 {
		t.Fatalf("after failures in the start period: %+v", h)
	}
	// After it, Retries failures make it unhealthy.
	d.recordHealth(c, result(11*time.Second, 1))
	if h := c.State.Health; h.Status != container.Starting || h.FailingStreak != 1 {
		t.Fatalf("after one failure: %+v", h)
	}
	d.recordHealth(c, result(12*time.Second, 2))
	if h := c.State.Health; h.Status != container.Unhealthy || h.FailingStreak != 2 {
		t.Fatalf("after two failures: %+v", h)
	}
	// One success: healthy; a failure then counts even in the start period.
	d.recordHealth(c, result(13*time.Second, 0))
	c.State.StartedAt = time.Now()
	d.recordHealth(c, result(14*time.Second, 1))
	if h := c.State.Health; h.Status != container.Healthy || h.FailingStreak != 1 {
		t.Fatalf("healthy, then one failure: %+v", h)
	}
	if n := len(c.State.Health.Log); n != maxHealthLog {
		t.Fatalf("log holds %d results, want %d", n, maxHealthLog)
	}
	if first := c.State.Health.Log[0]; !first.Start.Equal(start.Add(2 * time.Second)) {
		t.Fatalf("oldest kept result started at %v", first.Start.Sub(start))
	}
	var actions []string
	for len(live) > 0 {
		actions = append(actions, string((<-live).Action))
	}
	if want := []string{"health_status: unhealthy", "health_status: healthy"}; !reflect.DeepEqual(actions, want) {
		t.Fatalf("events %q, want %q", actions, want)
	}
	// The status change was persisted.
	recs, err := d.loadRecords()
	if err != nil || len(recs) != 1 || recs[0].State.Health == nil || recs[0].State.Health.Status != container.Healthy {
		t.Fatalf("persisted record: %v %+v", err, recs)
	}
}

func TestHealthIntervalAndStatus(t *testing.T) {
	c := &Container{}
	c.Config = &container.Config{Healthcheck: &container.HealthConfig{Test: []string{"CMD", "x"}, StartPeriod: time.Minute, StartInterval: 100 * time.Millisecond}}
	c.State = State{Status: container.StateRunning, StartedAt: time.Now(), Health: &container.Health{Status: container.Starting}}
	if got := healthInterval(c); got != 100*time.Millisecond {
		t.Fatalf("interval while starting in the start period: %v", got)
	}
	c.State.Health.Status = container.Healthy
	if got := healthInterval(c); got != defaultProbeInterval {
		t.Fatalf("interval once healthy: %v", got)
	}
	c.State.StartedAt = time.Now().Add(-2 * time.Minute)
	c.State.Health.Status = container.Starting
	if got := healthInterval(c); got != defaultProbeInterval {
		t.Fatalf("interval after the start period: %v", got)
	}
	for st, want := range map[container.HealthStatus]string{container.Starting: "Up Less than a second (health: starting)", container.Healthy: "Up Less than a second (healthy)", container.Unhealthy: "Up Less than a second (unhealthy)"} {
		s := State{Status: container.StateRunning, StartedAt: time.Now(), Health: &container.Health{Status: st}}
		if got := statusString(s, 0); got != want {
			t.Errorf("STATUS %q, want %q", got, want)
		}
	}
}

func TestLimitedBuffer(t *testing.T) {
	var b limitedBuffer
	_, _ = b.Write([]byte(strings.Repeat("a", 4000)))
	if b.String() != strings.Repeat("a", 4000) {
		t.Fatal("short output changed")
	}
	n, _ := b.Write([]byte(strings.Repeat("b", 200)))
	if n != 200 {
		t.Fatalf("Write returned %d", n)
	}
	if got := b.String(); len(got) != 4099 || !strings.HasSuffix(got, "b...") {
		t.Fatalf("truncated output %d bytes, ends %q", len(got), got[len(got)-5:])
	}
}

func TestLogFilesOrder(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c-json.log")
	for _, n := range []string{"c-json.log", "c-json.log.1", "c-json.log.2.gz", "c-json.log.10.gz", "c-json.log.3.gz", "c-json.log.3", "c-json.log.4.gz.tmp", "c-json.logx", "other.log.1"} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for _, f := range logFiles(p) {
		got = append(got, filepath.Base(f))
	}
	want := []string{"c-json.log.10.gz", "c-json.log.3", "c-json.log.2.gz", "c-json.log.1", "c-json.log"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("logFiles = %q, want %q", got, want)
	}
}

func TestResolveLogCompress(t *testing.T) {
	cfg := &Config{LogDriver: "json-file"}
	ls, err := resolveLog("json-file", map[string]string{"max-size": "1m", "max-file": "3", "compress": "true"}, cfg)
	if err != nil || !ls.Compress || ls.MaxFiles != 3 {
		t.Fatalf("compress with rotation: %+v %v", ls, err)
	}
	for _, opts := range []map[string]string{{"compress": "true"}, {"compress": "true", "max-size": "1m"}} {
		if _, err := resolveLog("json-file", opts, cfg); err == nil || !strings.Contains(err.Error(), "compress cannot be true when max-file is less than 2 or max-size is not set") {
			t.Fatalf("compress without rotation %v: %v", opts, err)
		}
	}
	if ls, err := resolveLog("local", nil, cfg); err != nil || !ls.Compress {
		t.Fatalf("local defaults: %+v %v", ls, err)
	}
	// dockerd's local driver refuses its default compression with one file,
	// takes max-size=0 (no rotation) and max-file=0.
	for _, opts := range []map[string]string{{"max-file": "1"}, {"max-file": "0"}, {"max-file": "1", "compress": "true"}} {
		if _, err := resolveLog("local", opts, cfg); err == nil || err.Error() != "compression cannot be enabled when max file count is 1" {
			t.Fatalf("local %v: %v", opts, err)
		}
	}
	if ls, err := resolveLog("local", map[string]string{"max-file": "1", "compress": "false"}, cfg); err != nil || ls.Compress || ls.MaxFiles != 1 {
		t.Fatalf("local max-file=1 compress=false: %+v %v", ls, err)
	}
	if ls, err := resolveLog("local", map[string]string{"max-size": "0"}, cfg); err != nil || ls.MaxSize != 0 || ls.Compress || ls.MaxFiles != 1 {
		t.Fatalf("local max-size=0: %+v %v", ls, err)
	}
	if _, err := resolveLog("json-file", map[string]string{"max-size": "0"}, cfg); err == nil {
		t.Fatal("json-file took max-size=0")
	}
}
