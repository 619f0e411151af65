package cli

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestEventsLines(t *testing.T) {
	f := newFakeDaemon(t)
	ts := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	f.handle("GET /events", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"Type": "container", "Action": "start",
			"Actor": map[string]any{"ID": testID, "Attributes": map[string]string{"name": "web", "image": "busybox"}},
			"time":  ts.Unix(), "timeNano": ts.UnixNano()})
	})
	r := runCLI(t, "", "events", "--since", "1h", "--until", "0s", "-f", "type=container")
	want := "2026-01-02T03:04:05.000000006Z container start " + testID + " (image=busybox, name=web)\n"
	if r.out != want || r.code != 0 {
		t.Fatalf("events: %+v\nwant %q", r, want)
	}
	q := f.query("GET /events")
	if !strings.Contains(q, "filters=") || !strings.Contains(q, "until=") || !strings.Contains(q, "since=") {
		t.Errorf("events query %q", q)
	}
	r = runCLI(t, "", "events", "--format", "{{.Action}} {{.Actor.Attributes.name}}")
	if r.out != "start web\n" {
		t.Errorf("events --format: %q", r.out)
	}
}

func TestNetworkCreateIPAM(t *testing.T) {
	f := newFakeDaemon(t)
	f.json("POST /networks/create", 201, map[string]string{"Id": "net123"})
	r := runCLI(t, "", "network", "create", "--subnet", "10.5.0.0/16", "--gateway", "10.5.0.1", "--ip-range", "10.5.1.0/24",
		"--internal", "--label", "a=b", "-o", "com.docker.network.bridge.name=br5", "n1")
	if r.out != "net123\n" || r.code != 0 {
		t.Fatalf("network create: %+v", r)
	}
	var body struct {
		Name, Driver string
		Internal     bool
		Labels       map[string]string
		Options      map[string]string
		IPAM         struct {
			Driver string
			Config []struct{ Subnet, Gateway, IPRange string }
		}
	}
	_ = json.Unmarshal(f.body("POST /networks/create"), &body)
	if body.Name != "n1" || body.Driver != "bridge" || !body.Internal || body.Labels["a"] != "b" || body.Options["com.docker.network.bridge.name"] != "br5" ||
		len(body.IPAM.Config) != 1 || body.IPAM.Config[0].Subnet != "10.5.0.0/16" || body.IPAM.Config[0].Gateway != "10.5.0.1" || body.IPAM.Config[0].IPRange != "10.5.1.0/24" {
		t.Errorf("network create body %s", f.body("POST /networks/create"))
	}
	r = runCLI(t, "", "network", "create", "--gateway", "10.9.0.1", "n2")
	if r.code == 0 || !strings.Contains(r.err, "every ip-range or gateway must have a corresponding subnet") {
		t.Errorf("gateway without subnet: %+v", r)
	}
	f.json("GET /networks", 200, []map[string]any{{"Id": "0123456789abcdef0123", "Name": "bridge", "Driver": "bridge", "Scope": "local"}})
	r = runCLI(t, "", "network", "ls")
	if r.out != "NETWORK ID     NAME      DRIVER    SCOPE\n0123456789ab   bridge    bridge    local\n" {
		t.Errorf("network ls: %q", r.out)
	}
}

func TestVolumeCommands(t *testing.T) {
	f := newFakeDaemon(t)
	f.json("POST /volumes/create", 201, map[string]any{"Name": "data", "Driver": "local"})
	r := runCLI(t, "", "volume", "create", "--label", "x=y", "-o", "type=tmpfs", "data")
	if r.out != "data\n" || r.code != 0 {
		t.Fatalf("volume create: %+v", r)
	}
	var body struct {
		Name       string
		DriverOpts map[string]string
		Labels     map[string]string
	}
	_ = json.Unmarshal(f.body("POST /volumes/create"), &body)
	if body.Name != "data" || body.DriverOpts["type"] != "tmpfs" || body.Labels["x"] != "y" {
		t.Errorf("volume create body %s", f.body("POST /volumes/create"))
	}
	f.json("GET /volumes", 200, map[string]any{"Volumes": []map[string]any{{"Name": "data", "Driver": "local"}}, "Warnings": nil})
	r = runCLI(t, "", "volume", "ls")
	if r.out != "DRIVER    VOLUME NAME\nlocal     data\n" {
		t.Errorf("volume ls: %q", r.out)
	}
	f.json("POST /volumes/prune", 200, map[string]any{"VolumesDeleted": []string{"data"}, "SpaceReclaimed": 2048})
	r = runCLI(t, "", "volume", "prune", "-f")
	if r.out != "Deleted Volumes:\ndata\n\nTotal reclaimed space: 2.05kB\n" {
		t.Errorf("volume prune: %q", r.out)
	}
	r = runCLI(t, "", "volume", "prune")
	if !strings.Contains(r.out, "Are you sure you want to continue? [y/N]") || f.seen("POST /volumes/prune") && len(f.Calls()) > 4 {
		t.Errorf("prune without -f must ask: %q (calls %v)", r.out, f.Calls())
	}
}

func TestLoginWritesDockerConfigFormat(t *testing.T) {
	f := newFakeDaemon(t)
	f.json("POST /auth", 200, map[string]string{"Status": "Login Succeeded"})
	dir := t.TempDir()
	r := runCLI(t, "secret\n", "--config", dir, "login", "-u", "bob", "--password-stdin", "127.0.0.1:5000")
	if r.code != 0 {
		t.Fatalf("login: %+v", r)
	}
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cf struct {
		Auths map[string]struct{ Auth string }
	}
	if err := json.Unmarshal(data, &cf); err != nil {
		t.Fatal(err)
	}
	if cf.Auths["127.0.0.1:5000"].Auth != base64.StdEncoding.EncodeToString([]byte("bob:secret")) {
		t.Errorf("config.json %s", data)
	}
	var auth struct{ Username, Password, ServerAddress string }
	_ = json.Unmarshal(f.body("POST /auth"), &auth)
	if auth.Username != "bob" || auth.Password != "secret" || auth.ServerAddress != "127.0.0.1:5000" {
		t.Errorf("auth body %+v", auth)
	}
}

func TestSearchTable(t *testing.T) {
	f := newFakeDaemon(t)
	f.json("GET /images/search", 200, []map[string]any{
		{"name": "busybox", "description": "Busybox base image with a long description that goes past forty-five chars", "star_count": 3000, "is_official": true},
		{"name": "someone/busybox", "description": "x", "star_count": 1},
	})
	r := runCLI(t, "", "search", "--limit", "2", "busybox")
	want := "NAME              DESCRIPTION                                     STARS     OFFICIAL\n" +
		"busybox           Busybox base image with a long description t…   3000      [OK]\n" +
		"someone/busybox   x                                               1         \n"
	if r.out != want {
		t.Errorf("search:\n%q\nwant\n%q", r.out, want)
	}
	if q := f.query("GET /images/search"); q != "limit=2&term=busybox" {
		t.Errorf("search query %q", q)
	}
}
