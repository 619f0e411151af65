package cli

import (
	"archive/tar"
	"bytes"
	"encoding/base64"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
)

func TestHumanized(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		ago  time.Duration
		want string
	}{
		{500 * time.Millisecond, "Less than a second ago"},
		{5 * time.Second, "5 seconds ago"},
		{70 * time.Second, "About a minute ago"},
		{3 * time.Minute, "3 minutes ago"},
		{61 * time.Minute, "About an hour ago"}, {90 * time.Minute, "2 hours ago"},
		{3 * time.Hour, "3 hours ago"},
		{50 * time.Hour, "2 days ago"},
		{15 * 24 * time.Hour, "2 weeks ago"},
		{70 * 24 * time.Hour, "2 months ago"},
	} {
		if got := humanSince(now.Add(-tc.ago), now); got != tc.want {
			t.Errorf("%v: %q, want %q", tc.ago, got, tc.want)
		}
	}
	for _, tc := range []struct {
		n    int64
		want string
	}{{0, "0B"}, {999, "999B"}, {1986000, "1.99MB"}, {123456789, "123MB"}, {5 << 30, "5.37GB"}} {
		if got := humanSize(tc.n); got != tc.want {
			t.Errorf("humanSize(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
	if got := bytesSize(1.5 * 1024 * 1024); got != "1.5MiB" {
		t.Errorf("bytesSize: %q", got)
	}
	if got := ellipsis("a very long command line", 20); got != "a very long command…" {
		t.Errorf("ellipsis %q", got)
	}
}

func TestDisplayablePorts(t *testing.T) {
	ip := netip.MustParseAddr("0.0.0.0")
	ip6 := netip.MustParseAddr("::")
	ports := []container.PortSummary{
		{PrivatePort: 8001, Type: "tcp"}, {PrivatePort: 8000, Type: "tcp"}, {PrivatePort: 8002, Type: "tcp"},
		{IP: ip, PrivatePort: 80, PublicPort: 8080, Type: "tcp"}, {IP: ip6, PrivatePort: 80, PublicPort: 8080, Type: "tcp"},
		{IP: ip, PrivatePort: 53, PublicPort: 53, Type: "udp"}, {PrivatePort: 9000, Type: "udp"},
	}
	want := "0.0.0.0:53->53/udp, 8000-8002/tcp, 9000/udp, 0.0.0.0:8080->80/tcp, [::]:8080->80/tcp"
	if got := displayablePorts(ports); got != want {
		t.Errorf("ports\n got %q\nwant %q", got, want)
	}
}

func TestStatsFormulas(t *testing.T) {
	v := &container.StatsResponse{
		ID: testID, Name: "/web",
		PreCPUStats: container.CPUStats{CPUUsage: container.CPUUsage{TotalUsage: 1_000_000_000}, SystemUsage: 100_000_000_000},
		CPUStats:    container.CPUStats{CPUUsage: container.CPUUsage{TotalUsage: 1_500_000_000}, SystemUsage: 102_000_000_000, OnlineCPUs: 2},
		MemoryStats: container.MemoryStats{Usage: 100 << 20, Limit: 1 << 30, Stats: map[string]uint64{"total_inactive_file": 40 << 20}},
		Networks:    map[string]container.NetworkStats{"eth0": {RxBytes: 1000, TxBytes: 2000}, "eth1": {RxBytes: 500}},
		BlkioStats: container.BlkioStats{IoServiceBytesRecursive: []container.BlkioStatEntry{
			{Op: "Read", Value: 4096}, {Op: "Write", Value: 8192}, {Op: "read", Value: 4096}, {Op: "Total", Value: 1}}},
		PidsStats: container.PidsStats{Current: 3},
	}
	e := computeStats(v)
	e.trunc = true
	// (0.5s / 2s) * 2 CPUs * 100 = 50%; memory 100MiB - 40MiB inactive cache.
	checks := map[string]string{
		"CPUPerc": e.CPUPerc(), "MemUsage": e.MemUsage(), "MemPerc": e.MemPerc(), "NetIO": e.NetIO(),
		"BlockIO": e.BlockIO(), "PIDs": e.PIDs(), "Name": e.Name(), "ID": e.ID(),
	}
	want := map[string]string{
		"CPUPerc": "50.00%", "MemUsage": "60MiB / 1GiB", "MemPerc": "5.86%", "NetIO": "1.5kB / 2kB",
		"BlockIO": "8.19kB / 8.19kB", "PIDs": "3", "Name": "web", "ID": "4f66ad9a0b2e",
	}
	for k, w := range want {
		if checks[k] != w {
			t.Errorf("%s = %q, want %q", k, checks[k], w)
		}
	}
	// cgroup v2 uses inactive_file.
	v2 := container.MemoryStats{Usage: 100, Stats: map[string]uint64{"inactive_file": 30}}
	if got := memUsageNoCache(v2); got != 70 {
		t.Errorf("v2 mem %v", got)
	}
}

func TestStatsNoStreamTable(t *testing.T) {
	f := newFakeDaemon(t)
	f.json("GET /containers/json", 200, []map[string]any{{"Id": testID, "Names": []string{"/web"}}})
	f.handle("GET /containers/{id}/stats", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"id": testID, "name": "/web",
			"cpu_stats":    map[string]any{"cpu_usage": map[string]any{"total_usage": 300}, "system_cpu_usage": 1000, "online_cpus": 1},
			"precpu_stats": map[string]any{"cpu_usage": map[string]any{"total_usage": 100}, "system_cpu_usage": 600},
			"memory_stats": map[string]any{"usage": 2 << 20, "limit": 8 << 20, "stats": map[string]any{"total_inactive_file": 1 << 20}},
			"pids_stats":   map[string]any{"current": 1}})
	})
	r := runCLI(t, "", "stats", "--no-stream")
	want := "CONTAINER ID   NAME      CPU %     MEM USAGE / LIMIT   MEM %     NET I/O   BLOCK I/O   PIDS\n" +
		"4f66ad9a0b2e   web       50.00%    1MiB / 8MiB         12.50%    0B / 0B   0B / 0B     1\n"
	if r.out != want || r.code != 0 {
		t.Fatalf("stats --no-stream:\n%s\nwant:\n%s\n(stderr %q)", r.out, want, r.err)
	}
	if q := f.query("GET /containers/" + testID + "/stats"); q != "one-shot=true&stream=false" {
		t.Errorf("stats query %q", q)
	}
}

func TestTemplateFuncs(t *testing.T) {
	tmpl, err := parseTemplate(`{{json .}}|{{join (split "a,b" ",") "-"}}|{{title "hello world"}}|{{lower "X"}}|{{upper "x"}}|{{pad "x" 1 2}}|{{truncate "abcdef" 3}}|{{println "p"}}`)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, map[string]string{"k": "<v>"}); err != nil {
		t.Fatal(err)
	}
	if want := `{"k":"<v>"}|a-b|Hello World|x|X| x  |abc|p` + "\n"; b.String() != want {
		t.Errorf("got %q want %q", b.String(), want)
	}
	if _, err := parseTemplate("{{.Bad"); err == nil || !strings.HasPrefix(err.Error(), "template parsing error") {
		t.Errorf("bad template error %v", err)
	}
}

func TestCpBothDirections(t *testing.T) {
	f := newFakeDaemon(t)
	dir := t.TempDir()
	// Container → host: the daemon sends a tar of /etc/app (a dir with a file).
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	_ = tw.WriteHeader(&tar.Header{Name: "app/", Typeflag: tar.TypeDir, Mode: 0o755})
	_ = tw.WriteHeader(&tar.Header{Name: "app/conf", Typeflag: tar.TypeReg, Mode: 0o640, Size: 5})
	_, _ = tw.Write([]byte("hello"))
	_ = tw.WriteHeader(&tar.Header{Name: "app/../../escape", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1})
	_, _ = tw.Write([]byte("x"))
	_ = tw.Close()
	stat := `{"name":"app","size":4096,"mode":2147484141,"mtime":"2024-01-01T00:00:00Z","linkTarget":""}`
	f.handle("GET /containers/{id}/archive", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Docker-Container-Path-Stat", b64(stat))
		w.Header().Set("Content-Type", "application/x-tar")
		_, _ = w.Write(tarBuf.Bytes())
	})
	r := runCLI(t, "", "cp", "web:/etc/app", filepath.Join(dir, "copy"))
	if r.code == 0 {
		t.Fatalf("an archive entry escaping the destination must fail: %+v", r)
	}
	if _, err := os.Stat(filepath.Join(dir, "escape")); err == nil {
		t.Fatal("escaping entry was written")
	}
	if b, err := os.ReadFile(filepath.Join(dir, "copy", "conf")); err != nil || string(b) != "hello" {
		t.Fatalf("copied file: %q %v", b, err)
	}
	r = runCLI(t, "", "cp", "web:/etc/app", "-")
	if r.out != tarBuf.String() {
		t.Errorf("cp to - did not stream the tar")
	}

	// Host → container: dst is an existing directory, so the file keeps its name.
	src := filepath.Join(dir, "local.txt")
	_ = os.WriteFile(src, []byte("data"), 0o600)
	var uploaded []byte
	var uploadPath string
	f.handle("HEAD /containers/{id}/archive", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Docker-Container-Path-Stat", b64(`{"name":"tmp","size":0,"mode":2147484141,"mtime":"2024-01-01T00:00:00Z","linkTarget":""}`))
		w.WriteHeader(200)
	})
	f.handle("PUT /containers/{id}/archive", func(w http.ResponseWriter, r *http.Request) {
		uploadPath = r.URL.Query().Get("path")
		uploaded, _ = io.ReadAll(r.Body)
		w.WriteHeader(200)
	})
	r = runCLI(t, "", "cp", src, "web:/tmp")
	if r.code != 0 {
		t.Fatalf("cp to container: %+v", r)
	}
	tr := tar.NewReader(bytes.NewReader(uploaded))
	hdr, err := tr.Next()
	if err != nil || hdr.Name != "local.txt" || uploadPath != "/tmp" {
		t.Fatalf("upload path %q entry %+v err %v", uploadPath, hdr, err)
	}
	body, _ := io.ReadAll(tr)
	if string(body) != "data" {
		t.Errorf("uploaded content %q", body)
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// TestFastFormatMatchesTemplate keeps the direct-call renderer and
// text/template in agreement.
func TestFastFormatMatchesTemplate(t *testing.T) {
	now := time.Now()
	rows := []any{
		psRow{c: psContainer{ID: testID, Names: []string{"/a", "/b/link"}, Image: "busybox", Command: "sleep 1000000000000000000",
			Created: now.Unix() - 100, Status: "Up", Labels: map[string]string{"k": "v"}}, trunc: true, now: now},
		psRow{c: psContainer{ID: testID, Names: []string{"/c"}, Image: "sha256:0123456789abcdef", Created: now.Unix()}, trunc: false, now: now},
	}
	for _, format := range []string{"", "table", "table {{.ID}}\t{{ .Names }}", "{{.ID}}:{{.Labels}}", "x{{.Size}}y{{.Mounts}}z", "table {{.Nope}}"} {
		var fast, slow bytes.Buffer
		errF := listFormat{format: format, table: "{{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}", headers: psHeaders}.render(&fast, rows)
		errS := listFormat{format: format, table: "{{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}", headers: psHeaders, noFast: true}.render(&slow, rows)
		if (errF == nil) != (errS == nil) || fast.String() != slow.String() {
			t.Errorf("format %q:\nfast %q (%v)\nslow %q (%v)", format, fast.String(), errF, slow.String(), errS)
		}
	}
}
