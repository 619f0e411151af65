package daemon

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/containerd/errdefs"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/api/types/registry"
	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/internal/api/backend"
	bimage "github.com/berth-dev/berth/internal/image"
)

// imageInUse tells the image store which container uses an image.
func (d *Daemon) imageInUse(id digest.Digest) *bimage.ImageUse {
	for _, c := range d.ctrs.list() {
		c.mu.Lock()
		img, running := c.Image, c.State.running()
		c.mu.Unlock()
		if img == id.String() {
			return &bimage.ImageUse{ContainerID: c.ID, Running: running}
		}
	}
	return nil
}

func (d *Daemon) imageSummary(img *bimage.Image) image.Summary {
	s := image.Summary{
		ID:          img.ID.String(),
		RepoTags:    img.RepoTags,
		RepoDigests: img.RepoDigests,
		Created:     img.Created.Unix(),
		Size:        img.Size,
		Labels:      img.Config.Config.Labels,
		Containers:  -1,
		SharedSize:  -1,
	}
	if s.RepoTags == nil {
		s.RepoTags = []string{}
	}
	if s.RepoDigests == nil {
		s.RepoDigests = []string{}
	}
	if s.Labels == nil {
		s.Labels = map[string]string{}
	}
	return s
}

// ImageList implements backend.ImageBackend.
func (d *Daemon) ImageList(ctx context.Context, opts backend.ImageListOptions) ([]image.Summary, error) {
	f := map[string][]string{}
	for k := range opts.Filters {
		f[k] = opts.Filters.Get(k)
	}
	imgs, err := d.images.List(ctx, bimage.ListOptions{All: opts.All, Filters: f})
	if err != nil {
		return nil, err
	}
	out := make([]image.Summary, 0, len(imgs))
	for _, img := range imgs {
		out = append(out, d.imageSummary(img))
	}
	return out, nil
}

// ImageInspect implements backend.ImageBackend.
func (d *Daemon) ImageInspect(ctx context.Context, name string) (image.InspectResponse, error) {
	img, err := d.getImage(ctx, name)
	if err != nil {
		return image.InspectResponse{}, err
	}
	cfg := img.Config
	r := image.InspectResponse{
		ID:           img.ID.String(),
		RepoTags:     img.RepoTags,
		RepoDigests:  img.RepoDigests,
		Created:      img.Created.UTC().Format("2006-01-02T15:04:05.999999999Z07:00"),
		Author:       cfg.Author,
		Architecture: cfg.Architecture,
		Variant:      cfg.Variant,
		Os:           cfg.OS,
		Size:         img.Size,
	}
	if r.RepoTags == nil {
		r.RepoTags = []string{}
	}
	if r.RepoDigests == nil {
		r.RepoDigests = []string{}
	}
	r.Config = &dockerspec.DockerOCIImageConfig{ImageConfig: cfg.Config}
	r.Config.Healthcheck = d.imageHealthcheck(img) // health.go: docker's extension, not in OCI's config
	// docker shows the newest history entry's comment (commit -m, import -m).
	if n := len(cfg.History); n > 0 {
		r.Comment = cfg.History[n-1].Comment
	}
	r.RootFS = image.RootFS{Type: "layers"}
	for _, l := range img.DiffIDs {
		r.RootFS.Layers = append(r.RootFS.Layers, l.String())
	}
	return r, nil
}

func (d *Daemon) getImage(ctx context.Context, name string) (*bimage.Image, error) {
	img, err := d.images.Get(ctx, name)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return nil, errMsg(errdefs.ErrNotFound, "No such image: %s", name)
		}
		return nil, err
	}
	return img, nil
}

// ImageHistory implements backend.ImageBackend.
func (d *Daemon) ImageHistory(ctx context.Context, name string) ([]image.HistoryResponseItem, error) {
	if _, err := d.getImage(ctx, name); err != nil {
		return nil, err
	}
	h, err := d.images.History(ctx, name)
	if err != nil {
		return nil, err
	}
	out := make([]image.HistoryResponseItem, 0, len(h))
	for _, e := range h {
		tags := e.Tags
		if tags == nil {
			tags = []string{}
		}
		out = append(out, image.HistoryResponseItem{ID: e.ID, Created: e.Created.Unix(), CreatedBy: e.CreatedBy, Tags: tags, Size: e.Size, Comment: e.Comment})
	}
	return out, nil
}

// ImageTag implements backend.ImageBackend.
func (d *Daemon) ImageTag(ctx context.Context, source, repo, tag string) error {
	if _, err := d.getImage(ctx, source); err != nil {
		return err
	}
	target := repo
	if tag != "" {
		target += ":" + tag
	}
	if err := d.images.Tag(ctx, source, target); err != nil {
		return err
	}
	d.publish("image", "tag", source, map[string]string{"name": target})
	return nil
}

// ImageRemove implements backend.ImageBackend.
func (d *Daemon) ImageRemove(ctx context.Context, name string, opts backend.ImageRemoveOptions) ([]image.DeleteResponse, error) {
	if _, err := d.getImage(ctx, name); err != nil {
		return nil, err
	}
	d.imageRefs.Lock()
	items, err := d.images.Delete(ctx, name, bimage.DeleteOptions{Force: opts.Force, PruneChildren: !opts.NoPrune, InUse: d.imageInUse})
	d.imageRefs.Unlock()
	if err != nil {
		return nil, err
	}
	out := make([]image.DeleteResponse, 0, len(items))
	for _, it := range items {
		out = append(out, image.DeleteResponse{Untagged: it.Untagged, Deleted: it.Deleted})
		if it.Untagged != "" {
			d.publish("image", "untag", it.Untagged, map[string]string{"name": it.Untagged})
		}
		if it.Deleted != "" {
			d.publish("image", "delete", it.Deleted, map[string]string{"name": it.Deleted})
		}
	}
	return out, nil
}

// ImagePrune implements backend.ImageBackend.
func (d *Daemon) ImagePrune(ctx context.Context, filters backend.Filters) (image.PruneReport, error) {
	if bad := filters.Validate("dangling", "until", "label", "label!"); bad != "" {
		return image.PruneReport{}, errMsg(errInvalid, "invalid filter '%s'", bad)
	}
	all := false
	for _, v := range filters.Get("dangling") {
		all = v == "false" || v == "0"
	}
	d.imageRefs.Lock()
	rep, err := d.images.Prune(ctx, bimage.PruneOptions{All: all, InUse: d.imageInUse})
	d.imageRefs.Unlock()
	if err != nil {
		return image.PruneReport{}, err
	}
	out := image.PruneReport{SpaceReclaimed: uint64(rep.SpaceReclaimed), ImagesDeleted: []image.DeleteResponse{}}
	for _, it := range rep.ImagesDeleted {
		out.ImagesDeleted = append(out.ImagesDeleted, image.DeleteResponse{Untagged: it.Untagged, Deleted: it.Deleted})
	}
	return out, nil
}

// authFunc turns the request's X-Registry-Auth into credentials, falling
// back to the store's config.json when the client sent none.
func authFunc(a registry.AuthConfig) bimage.CredentialFunc {
	if a.Username == "" && a.Password == "" && a.IdentityToken == "" && a.RegistryToken == "" {
		return nil
	}
	return func(host string) (bimage.Credential, error) {
		return bimage.Credential{Username: a.Username, Password: a.Password, IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken}, nil
	}
}

// ImagePull implements backend.RegistryBackend.
func (d *Daemon) ImagePull(ctx context.Context, opts backend.PullOptions, progress backend.ProgressFunc) error {
	ref := opts.Ref
	all := opts.Tag == ""
	if !all {
		if strings.HasPrefix(opts.Tag, "sha256:") {
			ref += "@" + opts.Tag
		} else {
			ref += ":" + opts.Tag
		}
	}
	platform := ""
	if opts.Platform != nil {
		platform = opts.Platform.OS + "/" + opts.Platform.Architecture
		if opts.Platform.Variant != "" {
			platform += "/" + opts.Platform.Variant
		}
	}
	var progErr error
	img, err := d.images.Pull(ctx, ref, bimage.PullOptions{
		Platform: platform,
		AllTags:  all,
		Auth:     authFunc(opts.Auth),
		Progress: progressFunc(progress, &progErr),
	})
	if err != nil {
		return err
	}
	if img != nil {
		d.publish("image", "pull", ref, map[string]string{"name": ref})
	}
	return progErr
}

// progressFunc adapts the image store's events to docker's JSON messages.
func progressFunc(progress backend.ProgressFunc, errp *error) func(bimage.ProgressEvent) {
	return func(ev bimage.ProgressEvent) {
		m := jsonstream.Message{ID: ev.ID, Status: ev.Status}
		if ev.Total > 0 || ev.Current > 0 {
			m.Progress = &jsonstream.Progress{Current: ev.Current, Total: ev.Total}
		}
		if err := progress(m); err != nil && *errp == nil {
			*errp = err
		}
	}
}

// ImagePush implements backend.RegistryBackend.
func (d *Daemon) ImagePush(ctx context.Context, opts backend.PushOptions, progress backend.ProgressFunc) error {
	ref := opts.Ref
	if opts.Tag != "" {
		ref += ":" + opts.Tag
	}
	var progErr error
	res, err := d.images.Push(ctx, ref, bimage.PushOptions{Auth: authFunc(opts.Auth), Progress: progressFunc(progress, &progErr)})
	if err != nil {
		return err
	}
	if res != nil {
		_ = progress(jsonstream.Message{Status: fmt.Sprintf("%s: digest: %s size: %d", res.Tag, res.Digest, res.Size)})
	}
	d.publish("image", "push", ref, map[string]string{"name": ref})
	return progErr
}

// ImageSearch implements backend.RegistryBackend.
func (d *Daemon) ImageSearch(ctx context.Context, opts backend.SearchOptions) ([]registry.SearchResult, error) {
	f := map[string][]string{}
	for k := range opts.Filters {
		f[k] = opts.Filters.Get(k)
	}
	res, err := d.images.Search(ctx, opts.Term, bimage.SearchOptions{Limit: opts.Limit, Filters: f, Auth: authFunc(opts.Auth)})
	if err != nil {
		return nil, err
	}
	out := make([]registry.SearchResult, 0, len(res))
	for _, r := range res {
		//lint:ignore SA1019 API 1.41 (dockerd 20.10) still reports is_automated as the registry gave it
		out = append(out, registry.SearchResult{Name: r.Name, Description: r.Description, StarCount: r.StarCount, IsOfficial: r.IsOfficial, IsAutomated: r.IsAutomated})
	}
	return out, nil
}

// RegistryLogin implements backend.RegistryBackend: the image store checks
// the credentials against the registry; the client stores them.
func (d *Daemon) RegistryLogin(ctx context.Context, auth registry.AuthConfig) (registry.AuthResponse, error) {
	cred := bimage.Credential{Username: auth.Username, Password: auth.Password, IdentityToken: auth.IdentityToken, RegistryToken: auth.RegistryToken}
	if err := d.images.Login(ctx, auth.ServerAddress, cred); err != nil {
		return registry.AuthResponse{}, err
	}
	return registry.AuthResponse{Status: "Login Succeeded"}, nil
}

// ImageSave implements backend.ImageArchiveBackend.
func (d *Daemon) ImageSave(ctx context.Context, names []string, opts backend.ImageSaveOptions, w io.Writer) error {
	for _, n := range names {
		if _, err := d.getImage(ctx, n); err != nil {
			return err
		}
	}
	return d.images.Save(ctx, names, w)
}

// ImageLoad implements backend.ImageArchiveBackend.
func (d *Daemon) ImageLoad(ctx context.Context, r io.Reader, opts backend.ImageLoadOptions, progress backend.ProgressFunc) error {
	var progErr error
	var pf func(bimage.ProgressEvent)
	if !opts.Quiet {
		pf = progressFunc(progress, &progErr)
	}
	res, err := d.images.Load(ctx, r, pf)
	if err != nil {
		return err
	}
	for _, n := range res.Names {
		_ = progress(jsonstream.Message{Stream: "Loaded image: " + n + "\n"})
		d.publish("image", "load", n, map[string]string{"name": n})
	}
	if len(res.Names) == 0 {
		for _, id := range res.IDs {
			_ = progress(jsonstream.Message{Stream: "Loaded image ID: " + id.String() + "\n"})
		}
	}
	return progErr
}

// ImageImport implements backend.ImageArchiveBackend.
func (d *Daemon) ImageImport(ctx context.Context, r io.Reader, opts backend.ImageImportOptions, progress backend.ProgressFunc) error {
	if opts.Source != "-" && opts.Source != "" {
		return errMsg(errdefs.ErrNotImplemented, "import from a URL is not supported by berth yet; pipe the tarball to 'import -'")
	}
	ref := opts.Repo
	if ref != "" && opts.Tag != "" {
		ref += ":" + opts.Tag
	}
	platform := ""
	if opts.Platform != nil {
		platform = opts.Platform.OS + "/" + opts.Platform.Architecture
	}
	health, changes, err := healthChanges(opts.Changes) // commit.go: HEALTHCHECK as commit parses it
	if err != nil {
		return err
	}
	img, err := d.images.Import(ctx, r, bimage.ImportOptions{Ref: ref, Changes: changes, Message: opts.Message, Platform: platform, Healthcheck: health})
	if err != nil {
		return err
	}
	d.publish("image", "import", img.ID.String(), map[string]string{"name": ref})
	return progress(jsonstream.Message{Status: img.ID.String()})
}
