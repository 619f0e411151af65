package apitest

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/api/backend"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/volume"
)

// ContainerRename implements backend.ContainerAdminBackend.
func (f *Fake) ContainerRename(_ context.Context, id, newName string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.findLocked(id)
	if err != nil {
		return err
	}
	if c.name == newName {
		return errdefs.ErrInvalidArgument.WithMessage("Renaming a container with the same name as its current name")
	}
	for _, o := range f.containers {
		if o.name == newName {
			return errdefs.ErrConflict.WithMessage(fmt.Sprintf("Error when allocating new name: Conflict. The container name \"/%s\" is already in use by container \"%s\". You have to remove (or rename) that container to be able to reuse that name.", newName, o.id))
		}
	}
	c.name = newName
	f.emitLocked(events.ContainerEventType, events.ActionRename, c.id, c.attrs())
	return nil
}

// ContainerUpdate implements backend.ContainerAdminBackend (restart policy
// and memory only).
func (f *Fake) ContainerUpdate(_ context.Context, id string, u container.UpdateConfig) (container.UpdateResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.findLocked(id)
	if err != nil {
		return container.UpdateResponse{}, err
	}
	if u.RestartPolicy.Name != "" {
		c.hc.RestartPolicy = u.RestartPolicy
	}
	if u.Memory != 0 {
		c.hc.Memory = u.Memory
	}
	return container.UpdateResponse{}, nil
}

// ContainerPrune implements backend.ContainerAdminBackend.
func (f *Fake) ContainerPrune(_ context.Context, filters backend.Filters) (container.PruneReport, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var rep container.PruneReport
	for _, c := range f.containers {
		if c.state == container.StateRunning || c.state == container.StatePaused || !filters.MatchKVList("label", c.cfg.Labels) {
			continue
		}
		f.removeLocked(c)
		rep.ContainersDeleted = append(rep.ContainersDeleted, c.id)
	}
	sort.Strings(rep.ContainersDeleted)
	return rep, nil
}

// ContainerCommit implements backend.ContainerAdminBackend.
func (f *Fake) ContainerCommit(_ context.Context, opts backend.CommitOptions) (container.CommitResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.findLocked(opts.Container); err != nil {
		return container.CommitResponse{}, err
	}
	var refs []string
	if opts.Repo != "" {
		tag := opts.Tag
		if tag == "" {
			tag = "latest"
		}
		refs = append(refs, opts.Repo+":"+tag)
	}
	return container.CommitResponse{ID: f.addImageLocked(refs...)}, nil
}

// ImageSave implements backend.ImageArchiveBackend: a tar with a
// manifest.json naming the images.
func (f *Fake) ImageSave(_ context.Context, names []string, _ backend.ImageSaveOptions, w io.Writer) error {
	f.mu.Lock()
	var tags []string
	for _, n := range names {
		im := f.findImageLocked(n)
		if im == nil {
			f.mu.Unlock()
			return errdefs.ErrNotFound.WithMessage("No such image: " + n)
		}
		tags = append(tags, im.tags...)
	}
	f.mu.Unlock()
	manifest := fmt.Sprintf(`[{"RepoTags":["%s"]}]`, strings.Join(tags, `","`))
	tw := tar.NewWriter(w)
	if err := tw.WriteHeader(&tar.Header{Name: "manifest.json", Mode: 0o644, Size: int64(len(manifest)), ModTime: fakeMtime}); err != nil {
		return err
	}
	if _, err := io.WriteString(tw, manifest); err != nil {
		return err
	}
	return tw.Close()
}

// ImageLoad implements backend.ImageArchiveBackend: reads manifest.json's
// RepoTags from the tar.
func (f *Fake) ImageLoad(_ context.Context, r io.Reader, _ backend.ImageLoadOptions, progress backend.ProgressFunc) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return errdefs.ErrInvalidArgument.WithMessage("invalid tar: no manifest.json")
		}
		if err != nil {
			return errdefs.ErrInvalidArgument.WithMessage("invalid tar: " + err.Error())
		}
		if h.Name != "manifest.json" {
			continue
		}
		b, _ := io.ReadAll(tr)
		s := string(b)
		i, j := strings.Index(s, `"RepoTags":["`), strings.Index(s, `"]`)
		if i < 0 || j < i {
			return errdefs.ErrInvalidArgument.WithMessage("invalid manifest.json")
		}
		for _, t := range strings.Split(s[i+len(`"RepoTags":["`):j], `","`) {
			f.AddImage(t)
			if err := progress(jsonstream.Message{Stream: "Loaded image: " + t + "\n"}); err != nil {
				return err
			}
		}
		return nil
	}
}

// ImageImport implements backend.ImageArchiveBackend.
func (f *Fake) ImageImport(_ context.Context, r io.Reader, opts backend.ImageImportOptions, progress backend.ProgressFunc) error {
	if opts.Source != "-" {
		return errdefs.ErrNotImplemented.WithMessage("import from a URL")
	}
	if _, err := tar.NewReader(r).Next(); err != nil {
		return errdefs.ErrInvalidArgument.WithMessage("invalid tar: " + err.Error())
	}
	var refs []string
	if opts.Repo != "" {
		tag := opts.Tag
		if tag == "" {
			tag = "latest"
		}
		refs = append(refs, opts.Repo+":"+tag)
	}
	id := f.AddImage(refs...)
	return progress(jsonstream.Message{Status: id})
}

// The fake's networks and volumes live in maps created on first use.
type netRec struct{ network.Inspect }

func (f *Fake) netsLocked() map[string]*netRec {
	if f.nets == nil {
		f.nets = map[string]*netRec{}
		for _, n := range []string{"bridge", "host", "none"} {
			driver := n
			if n == "none" {
				driver = "null"
			}
			f.seq++
			id := fmt.Sprintf("%064x", f.seq+1<<50)
			f.nets[id] = &netRec{network.Inspect{Network: network.Network{Name: n, ID: id, Driver: driver, Scope: "local", EnableIPv4: true,
				Options: map[string]string{}, Labels: map[string]string{}, Created: time.Unix(1700000000, 0)}}}
		}
	}
	return f.nets
}

func (f *Fake) findNetLocked(idOrName string) (*netRec, error) {
	for _, n := range f.netsLocked() {
		if n.Name == idOrName || n.ID == idOrName || len(idOrName) >= 3 && strings.HasPrefix(n.ID, idOrName) {
			return n, nil
		}
	}
	return nil, errdefs.ErrNotFound.WithMessage(fmt.Sprintf("network %s not found", idOrName))
}

// NetworkList implements backend.NetworkBackend.
func (f *Fake) NetworkList(_ context.Context, filters backend.Filters) ([]network.Summary, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []network.Summary
	for _, n := range f.netsLocked() {
		if filters.Match("name", n.Name) && filters.ExactMatch("driver", n.Driver) && filters.MatchKVList("label", n.Labels) {
			out = append(out, network.Summary{Network: n.Network})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// NetworkInspect implements backend.NetworkBackend.
func (f *Fake) NetworkInspect(_ context.Context, id string, _ backend.NetworkInspectOptions) (network.Inspect, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.findNetLocked(id)
	if err != nil {
		return network.Inspect{}, err
	}
	return n.Inspect, nil
}

// NetworkCreate implements backend.NetworkBackend.
func (f *Fake) NetworkCreate(_ context.Context, req network.CreateRequest) (network.CreateResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.findNetLocked(req.Name); err == nil {
		return network.CreateResponse{}, errdefs.ErrConflict.WithMessage(fmt.Sprintf("network with name %s already exists", req.Name))
	}
	f.seq++
	id := fmt.Sprintf("%064x", f.seq+1<<50)
	labels := req.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	f.netsLocked()[id] = &netRec{network.Inspect{Network: network.Network{Name: req.Name, ID: id, Driver: req.Driver, Scope: "local",
		Internal: req.Internal, Labels: labels, Options: map[string]string{}, Created: f.now()}}}
	return network.CreateResponse{ID: id}, nil
}

// NetworkRemove implements backend.NetworkBackend.
func (f *Fake) NetworkRemove(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.findNetLocked(id)
	if err != nil {
		return err
	}
	if n.Name == "bridge" || n.Name == "host" || n.Name == "none" {
		return errdefs.ErrPermissionDenied.WithMessage(fmt.Sprintf("%s is a pre-defined network and cannot be removed", n.Name))
	}
	delete(f.nets, n.ID)
	return nil
}

// NetworkPrune implements backend.NetworkBackend.
func (f *Fake) NetworkPrune(context.Context, backend.Filters) (network.PruneReport, error) {
	return network.PruneReport{}, nil
}

// NetworkConnect implements backend.NetworkBackend.
func (f *Fake) NetworkConnect(_ context.Context, id string, req network.ConnectRequest) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.findNetLocked(id); err != nil {
		return err
	}
	_, err := f.findLocked(req.Container)
	return err
}

// NetworkDisconnect implements backend.NetworkBackend.
func (f *Fake) NetworkDisconnect(_ context.Context, id string, req network.DisconnectRequest) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.findNetLocked(id); err != nil {
		return err
	}
	_, err := f.findLocked(req.Container)
	return err
}

// VolumeList implements backend.VolumeBackend.
func (f *Fake) VolumeList(_ context.Context, filters backend.Filters) (volume.ListResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	resp := volume.ListResponse{}
	for _, v := range f.vols {
		if filters.Match("name", v.Name) && filters.MatchKVList("label", v.Labels) {
			resp.Volumes = append(resp.Volumes, *v)
		}
	}
	sort.Slice(resp.Volumes, func(i, j int) bool { return resp.Volumes[i].Name < resp.Volumes[j].Name })
	return resp, nil
}

// VolumeInspect implements backend.VolumeBackend.
func (f *Fake) VolumeInspect(_ context.Context, name string) (volume.Volume, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.vols[name]
	if !ok {
		return volume.Volume{}, errdefs.ErrNotFound.WithMessage("get " + name + ": no such volume")
	}
	return *v, nil
}

// VolumeCreate implements backend.VolumeBackend.
func (f *Fake) VolumeCreate(_ context.Context, req volume.CreateRequest) (volume.Volume, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.vols == nil {
		f.vols = map[string]*volume.Volume{}
	}
	if req.Name == "" {
		f.seq++
		req.Name = fmt.Sprintf("%064x", f.seq)
	}
	if v, ok := f.vols[req.Name]; ok {
		return *v, nil
	}
	labels := req.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	v := &volume.Volume{Name: req.Name, Driver: req.Driver, Labels: labels, Options: req.DriverOpts, Scope: "local",
		Mountpoint: "/var/lib/berth/volumes/" + req.Name + "/_data", CreatedAt: f.now().UTC().Format(time.RFC3339)}
	f.vols[req.Name] = v
	return *v, nil
}

// VolumeRemove implements backend.VolumeBackend.
func (f *Fake) VolumeRemove(_ context.Context, name string, _ bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.vols[name]; !ok {
		return errdefs.ErrNotFound.WithMessage("get " + name + ": no such volume")
	}
	delete(f.vols, name)
	return nil
}

// VolumePrune implements backend.VolumeBackend.
func (f *Fake) VolumePrune(context.Context, backend.Filters) (volume.PruneReport, error) {
	return volume.PruneReport{}, nil
}
