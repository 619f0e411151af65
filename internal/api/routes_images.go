package api

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/berth-dev/berth/internal/api/backend"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/api/types/registry"
)

// Image names may contain slashes and a registry port
// ("127.0.0.1:5000/library/busybox:latest"), and clients send them
// unescaped, so a single {name} segment cannot match them. The routes
// with a name take the rest of the path ({rest...}) and split the action
// off its end: ".../json", ".../history", ".../get", ".../tag", ".../push".
// Fixed routes (/images/json, /images/search, ...) are more specific
// patterns and win in ServeMux.
func (s *Server) imageRoutes() {
	b := s.b
	img, reg, arch := b.Images != nil, b.Registry != nil, b.ImageArchive != nil
	s.handle("GET /images/json", img, s.imageList)
	s.handle("POST /images/prune", img, s.imagePrune)
	s.handle("GET /images/search", reg, s.imageSearch)
	s.handle("POST /images/create", reg || arch, s.imageCreate)
	s.handle("GET /images/get", arch, s.imageSaveMany)
	s.handle("POST /images/load", arch, s.imageLoad)
	s.handle("GET /images/{rest...}", true, s.imageGet)
	s.handle("POST /images/{rest...}", true, s.imagePost)
	s.handle("DELETE /images/{rest...}", img, s.imageRemove)
}

// splitAction splits "name/with/slashes/action" into name and action.
func splitAction(rest string) (name, action string) {
	i := strings.LastIndex(rest, "/")
	if i <= 0 {
		return rest, ""
	}
	return rest[:i], rest[i+1:]
}

func (s *Server) imageGet(w http.ResponseWriter, r *http.Request) error {
	name, action := splitAction(r.PathValue("rest"))
	switch action {
	case "json":
		if s.b.Images == nil {
			return errNotImplemented("image inspect")
		}
		img, err := s.b.Images.ImageInspect(r.Context(), name)
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, shapeImageInspect(apiVersion(r), img))
	case "history":
		if s.b.Images == nil {
			return errNotImplemented("image history")
		}
		h, err := s.b.Images.ImageHistory(r.Context(), name)
		if err != nil {
			return err
		}
		if h == nil {
			h = []image.HistoryResponseItem{}
		}
		return writeJSON(w, http.StatusOK, h)
	case "get":
		if s.b.ImageArchive == nil {
			return errNotImplemented("image save")
		}
		return s.imageSave(w, r, []string{name})
	}
	return notFound("page not found")
}

func (s *Server) imagePost(w http.ResponseWriter, r *http.Request) error {
	name, action := splitAction(r.PathValue("rest"))
	switch action {
	case "tag":
		if s.b.Images == nil {
			return errNotImplemented("image tag")
		}
		repo, tag := r.URL.Query().Get("repo"), r.URL.Query().Get("tag")
		if repo == "" {
			return invalidArg("repository name must have at least one component")
		}
		if tag == "" {
			repo, tag = splitRef(repo)
		}
		if tag == "" {
			tag = "latest"
		}
		if err := s.b.Images.ImageTag(r.Context(), name, repo, tag); err != nil {
			return err
		}
		w.WriteHeader(http.StatusCreated)
		return nil
	case "push":
		if s.b.Registry == nil {
			return errNotImplemented("image push")
		}
		auth, err := registryAuth(r)
		if err != nil {
			return err
		}
		platform, err := parsePlatform(r.URL.Query().Get("platform"))
		if err != nil {
			return err
		}
		ref, tag := name, r.URL.Query().Get("tag")
		if tag == "" {
			ref, tag = splitRef(name)
		}
		p := newProgress(w)
		return p.finish(s.b.Registry.ImagePush(r.Context(), backend.PushOptions{Ref: ref, Tag: tag, Platform: platform, Auth: auth}, p.send))
	}
	return notFound("page not found")
}

// splitRef splits "name:tag" or "name@digest" (a registry port is not a
// tag) into name and tag-or-digest.
func splitRef(ref string) (name, tag string) {
	if i := strings.Index(ref, "@"); i >= 0 {
		return ref[:i], ref[i+1:]
	}
	i := strings.LastIndex(ref, ":")
	if i < 0 || strings.Contains(ref[i:], "/") {
		return ref, ""
	}
	return ref[:i], ref[i+1:]
}

func (s *Server) imageList(w http.ResponseWriter, r *http.Request) error {
	f, err := filtersParam(r)
	if err != nil {
		return err
	}
	if bad := f.Validate("before", "dangling", "label", "reference", "since", "until"); bad != "" {
		return invalidArg("invalid filter '%s'", bad)
	}
	list, err := s.b.Images.ImageList(r.Context(), backend.ImageListOptions{
		All: boolValue(r, "all"), Filters: f, SharedSize: boolValue(r, "shared-size"), Manifests: boolValue(r, "manifests"),
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, shapeImageList(apiVersion(r), list))
}

func (s *Server) imagePrune(w http.ResponseWriter, r *http.Request) error {
	f, err := filtersParam(r)
	if err != nil {
		return err
	}
	rep, err := s.b.Images.ImagePrune(r.Context(), f)
	if err != nil {
		return err
	}
	if rep.ImagesDeleted == nil {
		rep.ImagesDeleted = []image.DeleteResponse{}
	}
	return writeJSON(w, http.StatusOK, rep)
}

func (s *Server) imageRemove(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("rest")
	if name == "" {
		return invalidArg("image name cannot be blank")
	}
	resp, err := s.b.Images.ImageRemove(r.Context(), name, backend.ImageRemoveOptions{Force: boolValue(r, "force"), NoPrune: boolValue(r, "noprune")})
	if err != nil {
		return err
	}
	if resp == nil {
		resp = []image.DeleteResponse{}
	}
	return writeJSON(w, http.StatusOK, resp)
}

func (s *Server) imageSearch(w http.ResponseWriter, r *http.Request) error {
	f, err := filtersParam(r)
	if err != nil {
		return err
	}
	if bad := f.Validate("is-automated", "is-official", "stars"); bad != "" {
		return invalidArg("invalid filter '%s'", bad)
	}
	limit, err := intValue(r, "limit", 0)
	if err != nil {
		return err
	}
	auth, err := registryAuth(r)
	if err != nil {
		return err
	}
	term := r.URL.Query().Get("term")
	res, err := s.b.Registry.ImageSearch(r.Context(), backend.SearchOptions{Term: term, Limit: limit, Filters: f, Auth: auth})
	if err != nil {
		return err
	}
	if res == nil {
		res = []registry.SearchResult{}
	}
	return writeJSON(w, http.StatusOK, res)
}

// imageCreate is pull (fromImage) or import (fromSrc).
func (s *Server) imageCreate(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	platform, err := parsePlatform(q.Get("platform"))
	if err != nil {
		return err
	}
	p := newProgress(w)
	switch {
	case q.Get("fromImage") != "":
		if s.b.Registry == nil {
			return errNotImplemented("image pull")
		}
		auth, err := registryAuth(r)
		if err != nil {
			return err
		}
		ref, tag := q.Get("fromImage"), q.Get("tag")
		if n, t := splitRef(ref); t != "" {
			ref = n
			if tag == "" {
				tag = t
			}
		}
		return p.finish(s.b.Registry.ImagePull(r.Context(), backend.PullOptions{Ref: ref, Tag: tag, Platform: platform, Auth: auth}, p.send))
	case q.Get("fromSrc") != "":
		if s.b.ImageArchive == nil {
			return errNotImplemented("image import")
		}
		opts := backend.ImageImportOptions{
			Source: q.Get("fromSrc"), Repo: q.Get("repo"), Tag: q.Get("tag"),
			Message: q.Get("message"), Changes: q["changes"], Platform: platform,
		}
		if n, t := splitRef(opts.Repo); t != "" && opts.Tag == "" {
			opts.Repo, opts.Tag = n, t // the client sends repo=name:tag
		}
		return p.finish(s.b.ImageArchive.ImageImport(r.Context(), r.Body, opts, p.send))
	}
	return invalidArg("either fromImage or fromSrc must be set")
}

func (s *Server) imageSaveMany(w http.ResponseWriter, r *http.Request) error {
	names := r.URL.Query()["names"]
	if len(names) == 0 {
		return invalidArg("no images specified")
	}
	return s.imageSave(w, r, names)
}

func (s *Server) imageSave(w http.ResponseWriter, r *http.Request, names []string) error {
	var opts backend.ImageSaveOptions
	for _, ps := range r.URL.Query()["platform"] {
		p, err := parsePlatform(ps)
		if err != nil {
			return err
		}
		if p != nil {
			opts.Platforms = append(opts.Platforms, *p)
		}
	}
	w.Header().Set("Content-Type", "application/x-tar")
	err := s.b.ImageArchive.ImageSave(r.Context(), names, opts, w)
	if err != nil && w.(*respWriter).wrote {
		return abortOnError(0, err)
	}
	return err
}

func (s *Server) imageLoad(w http.ResponseWriter, r *http.Request) error {
	opts := backend.ImageLoadOptions{Quiet: boolValue(r, "quiet")}
	for _, ps := range r.URL.Query()["platform"] {
		p, err := parsePlatform(ps)
		if err != nil {
			return err
		}
		if p != nil {
			opts.Platforms = append(opts.Platforms, *p)
		}
	}
	p := newProgress(w)
	return p.finish(s.b.ImageArchive.ImageLoad(r.Context(), r.Body, opts, p.send))
}

// progress streams docker's JSON progress messages, one per line, and
// reports an error after the first message in-stream.
type progress struct {
	w     http.ResponseWriter
	enc   *json.Encoder
	wrote bool
}

func newProgress(w http.ResponseWriter) *progress {
	return &progress{w: w, enc: json.NewEncoder(w)}
}

func (p *progress) send(m jsonstream.Message) error {
	if !p.wrote {
		p.w.Header().Set("Content-Type", "application/json")
		p.w.WriteHeader(http.StatusOK)
		p.wrote = true
	}
	if err := p.enc.Encode(m); err != nil {
		return err
	}
	flush(p.w)
	return nil
}

// progressError is docker's in-stream error line; "error" is the legacy
// copy of the message that old clients read.
type progressError struct {
	ErrorDetail jsonstream.Error `json:"errorDetail"`
	Error       string           `json:"error"`
}

func (p *progress) finish(err error) error {
	if !p.wrote {
		if err != nil {
			return err
		}
		p.w.Header().Set("Content-Type", "application/json")
		p.w.WriteHeader(http.StatusOK)
		return nil
	}
	if err != nil {
		_ = p.enc.Encode(progressError{ErrorDetail: jsonstream.Error{Message: err.Error()}, Error: err.Error()})
		flush(p.w)
	}
	return nil
}
