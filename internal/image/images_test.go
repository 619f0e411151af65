package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
)

func TestDeleteRefcountsLayers(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	base := layerOf(t, "gzip", map[string]string{"base": "b"})
	la := layerOf(t, "gzip", map[string]string{"a": "a"})
	e.push("a:1", imageOf(t, true, "amd64", base, la))
	e.push("b:1", imageOf(t, true, "amd64", base, layerOf(t, "gzip", map[string]string{"b": "b"})))
	a, err := e.store.Pull(ctx, e.ref("a:1"), PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.store.Pull(ctx, e.ref("b:1"), PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.Tag(ctx, e.ref("a:1"), "mytag:v1"); err != nil {
		t.Fatal(err)
	}
	// Removing one of two names only untags.
	items, err := e.store.Delete(ctx, "mytag:v1", DeleteOptions{})
	if err != nil || !slices.Equal(items, []DeleteItem{{Untagged: "mytag:v1"}}) {
		t.Fatalf("untag: %v %v", items, err)
	}
	// In use by a container: docker's conflict.
	inUse := func(id digest.Digest) *ImageUse {
		if id == a.ID {
			return &ImageUse{ContainerID: strings.Repeat("c", 64)}
		}
		return nil
	}
	_, err = e.store.Delete(ctx, e.ref("a:1"), DeleteOptions{InUse: inUse})
	if !errdefs.IsConflict(err) || !strings.Contains(err.Error(), "unable to remove repository reference") || !strings.Contains(err.Error(), "container cccccccccccc is using its referenced image "+a.ID.Encoded()[:12]) {
		t.Fatalf("in use: %v", err)
	}
	items, err = e.store.Delete(ctx, e.ref("a:1"), DeleteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []DeleteItem{{Untagged: e.ref("a:1")}, {Untagged: a.RepoDigests[0]}, {Deleted: a.ID.String()}, {Deleted: a.ChainIDs[1].String()}}
	if !slices.Equal(items, want) {
		t.Fatalf("delete a:\n got %v\nwant %v", items, want)
	}
	// The shared base survives; a's own layer and blobs are gone.
	if ok, _ := e.layers.Has(ctx, a.ChainIDs[0]); !ok {
		t.Fatal("shared base layer removed while b uses it")
	}
	if ok, _ := e.layers.Has(ctx, a.ChainIDs[1]); ok {
		t.Fatal("a's top layer survived")
	}
	if e.store.Content().Has(digestOf(t, la.Digest)) || e.store.Content().Has(a.ID) {
		t.Fatal("a's blobs survived")
	}
	if !e.store.Content().Has(digestOf(t, base.Digest)) {
		t.Fatal("shared blob collected")
	}
	if _, err := e.store.Get(ctx, b.ID.String()); err != nil {
		t.Fatal(err)
	}
	// By ID, everything goes.
	if _, err := e.store.Delete(ctx, b.ID.Encoded()[:8], DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if e.layers.count() != 0 {
		t.Fatalf("%d layers left", e.layers.count())
	}
	left := 0
	e.store.Content().Walk(func(digest.Digest, int64) error { left++; return nil })
	if left != 0 {
		t.Fatalf("%d blobs left", left)
	}
	if _, err := e.store.Delete(ctx, "nosuch", DeleteOptions{}); !errdefs.IsNotFound(err) {
		t.Fatalf("missing: %v", err)
	}
}

func TestListFilters(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.push("one:1", imageOf(t, true, "amd64", layerOf(t, "gzip", map[string]string{"1": "1"})))
	e.push("two:1", imageOf(t, true, "arm64", layerOf(t, "gzip", map[string]string{"2": "22"})))
	one, _ := e.store.Pull(ctx, e.ref("one:1"), PullOptions{})
	two, err := e.store.Pull(ctx, e.ref("two:1"), PullOptions{Platform: "linux/arm64"})
	if err != nil {
		t.Fatal(err)
	}
	ids := func(f map[string][]string) []digest.Digest {
		imgs, err := e.store.List(ctx, ListOptions{Filters: f})
		if err != nil {
			t.Fatal(err)
		}
		var out []digest.Digest
		for _, i := range imgs {
			out = append(out, i.ID)
		}
		slices.Sort(out)
		return out
	}
	all := []digest.Digest{one.ID, two.ID}
	slices.Sort(all)
	if got := ids(nil); !slices.Equal(got, all) {
		t.Errorf("all: %v", got)
	}
	if got := ids(map[string][]string{"reference": {e.host + "/one"}}); !slices.Equal(got, []digest.Digest{one.ID}) {
		t.Errorf("reference: %v", got)
	}
	if got := ids(map[string][]string{"reference": {e.host + "/t*:1"}}); !slices.Equal(got, []digest.Digest{two.ID}) {
		t.Errorf("reference glob: %v", got)
	}
	if got := ids(map[string][]string{"label": {"arch=arm64"}}); !slices.Equal(got, []digest.Digest{two.ID}) {
		t.Errorf("label: %v", got)
	}
	if got := ids(map[string][]string{"dangling": {"true"}}); len(got) != 0 {
		t.Errorf("dangling: %v", got)
	}
	// Untagging leaves a dangling image (digest name only).
	if _, err := e.store.Delete(ctx, e.ref("two:1"), DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.List(ctx, ListOptions{Filters: map[string][]string{"bogus": {"x"}}}); !errdefs.IsInvalidArgument(err) {
		t.Errorf("bad filter: %v", err)
	}
	rep, err := e.store.Prune(ctx, PruneOptions{All: true})
	if err != nil || len(rep.ImagesDeleted) == 0 {
		t.Fatalf("prune: %v %v", rep, err)
	}
	if got := ids(nil); len(got) != 0 {
		t.Errorf("after prune -a: %v", got)
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.push("app:1", imageOf(t, true, "amd64", layerOf(t, "gzip", map[string]string{"etc/a": "A"}), layerOf(t, "zstd", map[string]string{"etc/b": "B"})))
	img, err := e.store.Pull(ctx, e.ref("app:1"), PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := e.store.Save(ctx, []string{e.ref("app:1")}, &buf); err != nil {
		t.Fatal(err)
	}
	// The archive carries docker's manifest.json and an OCI index.
	names := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(buf.Bytes()))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		names[h.Name] = b
	}
	var mj []dockerManifestEntry
	if err := json.Unmarshal(names["manifest.json"], &mj); err != nil || len(mj) != 1 || mj[0].RepoTags[0] != e.ref("app:1") || len(mj[0].Layers) != 2 {
		t.Fatalf("manifest.json: %s", names["manifest.json"])
	}
	if names["oci-layout"] == nil || names["index.json"] == nil || !strings.Contains(string(names["index.json"]), annotationImageName) {
		t.Fatal("OCI layout entries missing")
	}

	// Load into a fresh store: same ID, same files.
	e2 := newEnv(t)
	res, err := e2.store.Load(ctx, bytes.NewReader(buf.Bytes()), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Names, []string{e.ref("app:1")}) {
		t.Fatalf("loaded %v", res)
	}
	got, err := e2.store.Get(ctx, e.ref("app:1"))
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != img.ID || e2.files(got)["etc/b"] != "B" || e2.files(got)["etc/a"] != "A" {
		t.Fatalf("loaded image %s files %v", got.ID, e2.files(got))
	}

	// The OCI layout alone (no manifest.json) loads too.
	var oci bytes.Buffer
	tw := tar.NewWriter(&oci)
	for n, b := range names {
		if n == "manifest.json" || n == "repositories" || strings.HasSuffix(n, "/") {
			continue
		}
		tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg})
		tw.Write(b)
	}
	tw.Close()
	e3 := newEnv(t)
	res, err = e3.store.Load(ctx, &oci, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := e3.store.Get(ctx, e.ref("app:1")); err != nil || got.ID != img.ID || len(res.Names) != 1 {
		t.Fatalf("OCI load: %v %v", res, err)
	}

	// A docker 20.10 style archive: <id>/layer.tar (uncompressed, symlinked), <cfg>.json.
	var legacy bytes.Buffer
	tw = tar.NewWriter(&legacy)
	put := func(n string, b []byte) {
		tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg})
		tw.Write(b)
	}
	l1 := tarOf(t, map[string]string{"x": "1"})
	put("aaa/layer.tar", l1)
	tw.WriteHeader(&tar.Header{Name: "bbb/layer.tar", Typeflag: tar.TypeSymlink, Linkname: "../aaa/layer.tar"})
	d1 := digest.FromBytes(l1)
	cfg := []byte(`{"architecture":"amd64","os":"linux","config":{"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":["` + d1.String() + `","` + d1.String() + `"]}}`)
	cid := digest.FromBytes(cfg)
	put(cid.Encoded()+".json", cfg)
	put("manifest.json", []byte(`[{"Config":"`+cid.Encoded()+`.json","RepoTags":["legacy:1"],"Layers":["aaa/layer.tar","bbb/layer.tar"]}]`))
	tw.Close()
	res, err = e3.store.Load(ctx, &legacy, nil)
	if err != nil {
		t.Fatal(err)
	}
	lg, err := e3.store.Get(ctx, "legacy:1")
	if err != nil || lg.ID != cid || e3.files(lg)["x"] != "1" || len(lg.ChainIDs) != 2 {
		t.Fatalf("legacy load: %v %v", res, err)
	}
}

func TestImportWithChanges(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(tarOf(t, map[string]string{"bin/app": "app", "etc/conf": "c"}))
	zw.Close()
	img, err := e.store.Import(ctx, &gz, ImportOptions{
		Ref: "imported:v1",
		Changes: []string{
			`CMD ["/bin/app", "--serve"]`, `ENTRYPOINT /bin/sh -x`, `ENV A=1 B="two words"`, `ENV C three`,
			`WORKDIR /srv`, `USER nobody`, `EXPOSE 80 53/udp`, `LABEL k=v "x y"=z`, `VOLUME ["/data"]`, `STOPSIGNAL SIGINT`,
		},
		Message: "from a tarball",
	})
	if err != nil {
		t.Fatal(err)
	}
	c := img.Config.Config
	if !slices.Equal(c.Cmd, []string{"/bin/app", "--serve"}) || !slices.Equal(c.Entrypoint, []string{"/bin/sh", "-c", "/bin/sh -x"}) {
		t.Errorf("cmd %q entrypoint %q", c.Cmd, c.Entrypoint)
	}
	if !slices.Equal(c.Env, []string{"A=1", "B=two words", "C=three"}) || c.WorkingDir != "/srv" || c.User != "nobody" || c.StopSignal != "SIGINT" {
		t.Errorf("env %q workdir %q user %q", c.Env, c.WorkingDir, c.User)
	}
	if _, ok := c.ExposedPorts["53/udp"]; !ok || len(c.ExposedPorts) != 2 || c.Labels["x y"] != "z" || c.Labels["k"] != "v" {
		t.Errorf("ports %v labels %v", c.ExposedPorts, c.Labels)
	}
	if _, ok := c.Volumes["/data"]; !ok || img.Config.History[0].Comment != "from a tarball" {
		t.Errorf("volumes %v history %v", c.Volumes, img.Config.History)
	}
	if e.files(img)["bin/app"] != "app" || img.RepoTags[0] != "imported:v1" || img.Size != 4 {
		t.Errorf("files %v tags %v size %d", e.files(img), img.RepoTags, img.Size)
	}
	if _, err := e.store.Import(ctx, strings.NewReader(""), ImportOptions{Changes: []string{"RUN make"}}); !errdefs.IsInvalidArgument(err) {
		t.Errorf("RUN change: %v", err)
	}
	h, err := e.store.History(ctx, "imported:v1")
	if err != nil || len(h) != 1 || h[0].ID != img.ID.String() || h[0].Size != 4 {
		t.Errorf("history %v %v", h, err)
	}
}

func TestPushThenPull(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	img, err := e.store.Import(ctx, bytes.NewReader(tarOf(t, map[string]string{"f": "pushed"})), ImportOptions{Ref: e.ref("pushed:1")})
	if err != nil {
		t.Fatal(err)
	}
	var events []ProgressEvent
	res, err := e.store.Push(ctx, e.ref("pushed:1"), PushOptions{Progress: func(ev ProgressEvent) { events = append(events, ev) }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Digest != img.Target.Digest || !slices.ContainsFunc(events, func(ev ProgressEvent) bool { return ev.Status == "Pushed" }) {
		t.Fatalf("push: %v %v", res, events)
	}
	// Pushing again: every layer already exists.
	events = nil
	if _, err := e.store.Push(ctx, e.ref("pushed:1"), PushOptions{Progress: func(ev ProgressEvent) { events = append(events, ev) }}); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(events, func(ev ProgressEvent) bool { return ev.Status == "Layer already exists" }) {
		t.Fatalf("second push: %v", events)
	}
	e2 := newEnv(t)
	e2.srv.Close()
	got, err := (&testEnv{t: t, store: e2.store}).store.Pull(ctx, e.ref("pushed:1"), PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != img.ID || e2.files(got)["f"] != "pushed" {
		t.Fatalf("pulled back %s %v", got.ID, e2.files(got))
	}
	if _, err := e.store.Push(ctx, "nosuch:1", PushOptions{}); !errdefs.IsNotFound(err) {
		t.Fatalf("push missing: %v", err)
	}
}

func TestSearch(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/search" {
			http.NotFound(w, r)
			return
		}
		if r.URL.Query().Get("q") != "busy" || r.URL.Query().Get("n") != "10" {
			http.Error(w, "bad query "+r.URL.RawQuery, 400)
			return
		}
		w.Write([]byte(`{"num_results":2,"query":"busy","results":[
			{"name":"busybox","description":"Busybox base image.","star_count":3000,"is_official":true,"is_automated":false},
			{"name":"someone/busy","description":"","star_count":1,"is_official":false,"is_automated":true}]}`))
	}))
	defer srv.Close()
	e := newEnv(t)
	host := strings.TrimPrefix(srv.URL, "http://")
	res, err := e.store.Search(context.Background(), host+"/busy", SearchOptions{Limit: 10})
	if err != nil || len(res) != 2 || res[0].Name != "busybox" || res[0].StarCount != 3000 || !res[0].IsOfficial || !res[1].IsAutomated {
		t.Fatalf("search: %v %v", res, err)
	}
	res, err = e.store.Search(context.Background(), host+"/busy", SearchOptions{Limit: 10, Filters: map[string][]string{"is-official": {"true"}, "stars": {"10"}}})
	if err != nil || len(res) != 1 {
		t.Fatalf("filtered: %v %v", res, err)
	}
	// The in-process v2 registry has no search endpoint.
	_, err = e.store.Search(context.Background(), e.host+"/busy", SearchOptions{})
	if !errdefs.IsNotImplemented(err) || !strings.Contains(err.Error(), "registry "+e.host+" does not support search") {
		t.Fatalf("no search: %v", err)
	}
}

func TestConfigFileCredentials(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "config.json")
	enc := base64.StdEncoding.EncodeToString([]byte("alice:s3cret:x"))
	os.WriteFile(p, []byte(`{"auths":{"https://index.docker.io/v1/":{"auth":"`+enc+`"},"127.0.0.1:5000":{"auth":"`+base64.StdEncoding.EncodeToString([]byte("bob:pw"))+`"}}}`), 0o600)
	get := ConfigFileCredentials(p)
	if c, err := get("docker.io"); err != nil || c.Username != "alice" || c.Password != "s3cret:x" {
		t.Fatalf("hub: %+v %v", c, err)
	}
	if c, _ := get("127.0.0.1:5000"); c.Username != "bob" {
		t.Fatalf("local: %+v", c)
	}
	if c, _ := get("other:1"); c != (Credential{}) {
		t.Fatalf("other: %+v", c)
	}
	if c, err := ConfigFileCredentials(filepath.Join(dir, "missing"))("docker.io"); err != nil || c != (Credential{}) {
		t.Fatal("missing file should mean anonymous")
	}
}

func TestPullWithBasicAuth(t *testing.T) {
	e := newEnv(t)
	e.push("private:1", imageOf(t, true, "amd64", layerOf(t, "gzip", map[string]string{"s": "secret"})))
	e.setFault(func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
		if u, p, ok := r.BasicAuth(); ok && u == "bob" && p == "pw" {
			return false
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
		http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"login"}]}`, http.StatusUnauthorized)
		return true
	})
	ctx := context.Background()
	if _, err := e.store.Pull(ctx, e.ref("private:1"), PullOptions{}); !errdefs.IsUnauthorized(err) {
		t.Fatalf("anonymous: %v", err)
	}
	img, err := e.store.Pull(ctx, e.ref("private:1"), PullOptions{Auth: func(host string) (Credential, error) {
		if host != e.host {
			t.Errorf("credentials asked for %q", host)
		}
		return Credential{Username: "bob", Password: "pw"}, nil
	}})
	if err != nil || e.files(img)["s"] != "secret" {
		t.Fatalf("with auth: %v", err)
	}
}

func TestMirror(t *testing.T) {
	e := newEnv(t)
	e.push("library/busybox:latest", imageOf(t, true, "amd64", layerOf(t, "gzip", map[string]string{"m": "mirrored"})))
	s, err := New(context.Background(), Options{Root: t.TempDir(), DB: e.db, Layers: e.layers, Mirrors: map[string][]string{"docker.io": {"http://" + e.host}}})
	if err != nil {
		t.Fatal(err)
	}
	img, err := s.Pull(context.Background(), "busybox", PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(img.RepoTags, []string{"busybox:latest"}) || e.files(img)["m"] != "mirrored" {
		t.Fatalf("mirror pull: %v %v", img.RepoTags, e.files(img))
	}
}

func TestLayerHeldByContainerIsRetried(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.push("held:1", imageOf(t, true, "amd64", layerOf(t, "gzip", map[string]string{"a": "1"}), layerOf(t, "gzip", map[string]string{"b": "2"})))
	img, err := e.store.Pull(ctx, e.ref("held:1"), PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// A container snapshot sits on the top layer (forced delete past InUse).
	e.layers.pinned = map[digest.Digest]bool{img.TopLayer(): true}
	items, err := e.store.Delete(ctx, img.ID.String(), DeleteOptions{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(items, DeleteItem{Deleted: img.TopLayer().String()}) || e.layers.count() != 2 {
		t.Fatalf("held layers reported deleted: %v (%d left)", items, e.layers.count())
	}
	// Once the container is gone, prune removes both.
	e.layers.pinned = nil
	if _, err := e.store.Prune(ctx, PruneOptions{}); err != nil {
		t.Fatal(err)
	}
	if e.layers.count() != 0 {
		t.Fatalf("%d layers left after prune", e.layers.count())
	}
}

func TestLogin(t *testing.T) {
	e := newEnv(t)
	e.setFault(func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
		if u, p, ok := r.BasicAuth(); ok && u == "bob" && p == "pw" {
			return false
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
		http.Error(w, "login", http.StatusUnauthorized)
		return true
	})
	ctx := context.Background()
	if err := e.store.Login(ctx, e.host, Credential{Username: "bob", Password: "pw"}); err != nil {
		t.Fatal(err)
	}
	if err := e.store.Login(ctx, "http://"+e.host, Credential{Username: "bob", Password: "bad"}); !errdefs.IsUnauthorized(err) {
		t.Fatalf("bad password: %v", err)
	}
}

func TestPullAllTagsAndForeignLayers(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.push("many:1", imageOf(t, true, "amd64", layerOf(t, "gzip", map[string]string{"v": "1"})))
	e.push("many:2", imageOf(t, true, "amd64", layerOf(t, "gzip", map[string]string{"v": "2"})))
	if _, err := e.store.Pull(ctx, e.ref("many"), PullOptions{AllTags: true}); err != nil {
		t.Fatal(err)
	}
	for _, tag := range []string{"1", "2"} {
		img, err := e.store.Get(ctx, e.ref("many:"+tag))
		if err != nil || e.files(img)["v"] != tag {
			t.Fatalf("many:%s: %v", tag, err)
		}
	}
	if _, err := e.store.Pull(ctx, e.ref("many:1"), PullOptions{AllTags: true}); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("-a with a tag: %v", err)
	}

	// A non-distributable layer is listed but never uploaded or fetched.
	foreign := layerOf(t, "gzip", map[string]string{"windows": "x"})
	img := imageOf(t, false, "amd64", layerOf(t, "gzip", map[string]string{"base": "b"}))
	img, err := mutate.Append(img, mutate.Addendum{Layer: foreign, MediaType: types.DockerForeignLayer, URLs: []string{"https://example.invalid/layer"}})
	if err != nil {
		t.Fatal(err)
	}
	e.push("foreign:1", img)
	got, err := e.store.Pull(ctx, e.ref("foreign:1"), PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if e.gets(digestOf(t, foreign.Digest)) != 0 || e.files(got)["base"] != "b" || e.files(got)["windows"] != "" || len(got.ChainIDs) != 2 {
		t.Fatalf("foreign layer: gets %d files %v", e.gets(digestOf(t, foreign.Digest)), e.files(got))
	}
}

func TestPullWithBearerToken(t *testing.T) {
	e := newEnv(t)
	e.push("tok:1", imageOf(t, true, "amd64", layerOf(t, "gzip", map[string]string{"t": "token"})))
	var tokenReqs int
	e.setFault(func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
		if r.URL.Path == "/token" {
			tokenReqs++
			u, p, ok := r.BasicAuth()
			if !ok || u != "carol" || p != "pw" || !strings.Contains(r.URL.Query().Get("scope"), "repository:tok:pull") {
				http.Error(w, "denied", http.StatusUnauthorized)
				return true
			}
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"token":"sesame","expires_in":300}`))
			return true
		}
		if r.Header.Get("Authorization") == "Bearer sesame" {
			return false
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="http://`+e.host+`/token",service="test"`)
		http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"token required"}]}`, http.StatusUnauthorized)
		return true
	})
	creds := func(string) (Credential, error) { return Credential{Username: "carol", Password: "pw"}, nil }
	img, err := e.store.Pull(context.Background(), e.ref("tok:1"), PullOptions{Auth: creds})
	if err != nil || e.files(img)["t"] != "token" || tokenReqs == 0 {
		t.Fatalf("bearer pull: %v (token requests %d)", err, tokenReqs)
	}
	bad := func(string) (Credential, error) { return Credential{Username: "carol", Password: "nope"}, nil }
	e2 := e.open()
	if _, err := e2.Pull(context.Background(), e.ref("tok:1"), PullOptions{Auth: bad}); !errdefs.IsUnauthorized(err) {
		t.Fatalf("bad password: %v", err)
	}
}

func TestDeleteSparesLayersOfPullInFlight(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.push("a:1", imageOf(t, true, "amd64", layerOf(t, "gzip", map[string]string{"1": "1"}), layerOf(t, "gzip", map[string]string{"2": "2"})))
	a, err := e.store.Pull(ctx, e.ref("a:1"), PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// A pull of another image on the same base is between unpack and record.
	unpin := e.store.pin(a.ChainIDs[:1])
	items, err := e.store.Delete(ctx, e.ref("a:1"), DeleteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(items, DeleteItem{Deleted: a.ChainIDs[0].String()}) {
		t.Fatal("base layer removed under a pull in flight")
	}
	if ok, _ := e.layers.Has(ctx, a.ChainIDs[0]); !ok || e.layers.count() != 1 {
		t.Fatalf("layers left: %d", e.layers.count())
	}
	unpin()
	if _, err := e.store.Prune(ctx, PruneOptions{}); err != nil || e.layers.count() != 0 {
		t.Fatalf("prune after the pull gave up: %v, %d layers", err, e.layers.count())
	}
}

func TestUnpackAgainAfterSnapshotsLost(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.push("re:1", imageOf(t, true, "amd64", layerOf(t, "gzip", map[string]string{"a": "1"}), layerOf(t, "zstd", map[string]string{"b": "2"})))
	img, err := e.store.Pull(ctx, e.ref("re:1"), PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// A new (empty) snapshotter, as after switching from overlay to native.
	e.layers = newMemLayers()
	e.store = e.open()
	if err := e.store.Unpack(ctx, "re:1"); err == nil {
		t.Fatal("unqualified name should not resolve")
	}
	if err := e.store.Unpack(ctx, img.ID.String()); err != nil {
		t.Fatal(err)
	}
	if e.files(img)["b"] != "2" || e.files(img)["a"] != "1" {
		t.Fatalf("re-unpacked files %v", e.files(img))
	}
}

func TestInsecureRegistries(t *testing.T) {
	s, err := New(context.Background(), Options{Root: t.TempDir(), DB: newEnv(t).db, InsecureRegistries: []string{"myreg:5000", "10.1.0.0/16"}})
	if err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]bool{
		"127.0.0.1:5000": true, "localhost:5000": true, "[::1]:5000": true, "127.9.9.9": true,
		"myreg:5000": true, "myreg:5001": false, "10.1.2.3:5000": true, "10.2.0.1:5000": false, "docker.io": false,
	} {
		if got := s.insecure(host); got != want {
			t.Errorf("%s: insecure=%v want %v", host, got, want)
		}
	}
	if _, err := New(context.Background(), Options{Root: t.TempDir(), DB: newEnv(t).db, InsecureRegistries: []string{"10.0.0.0/99"}}); !errdefs.IsInvalidArgument(err) {
		t.Errorf("bad CIDR: %v", err)
	}
}

func TestMirrorMissingBlobFallsBack(t *testing.T) {
	upstream, mirror := newEnv(t), newEnv(t)
	l := layerOf(t, "gzip", map[string]string{"f": "from upstream"})
	img := imageOf(t, true, "amd64", l)
	upstream.push("app:1", img)
	mirror.push("app:1", img)
	mirror.setFault(func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
		if strings.HasSuffix(r.URL.Path, digestOf(t, l.Digest).String()) {
			http.Error(w, `{"errors":[{"code":"BLOB_UNKNOWN"}]}`, http.StatusNotFound)
			return true
		}
		return false
	})
	s, err := New(context.Background(), Options{Root: t.TempDir(), DB: upstream.db, Layers: upstream.layers, Mirrors: map[string][]string{upstream.host: {"http://" + mirror.host}}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Pull(context.Background(), upstream.ref("app:1"), PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if upstream.files(got)["f"] != "from upstream" || mirror.gets(digestOf(t, l.Digest)) == 0 || upstream.gets(digestOf(t, l.Digest)) != 1 {
		t.Fatalf("fallback: files %v, mirror gets %d, upstream gets %d", upstream.files(got), mirror.gets(digestOf(t, l.Digest)), upstream.gets(digestOf(t, l.Digest)))
	}
}
