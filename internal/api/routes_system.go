package api

import (
	"net/http"
	"runtime"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/api/backend"
	"github.com/moby/moby/api/pkg/authconfig"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/api/types/system"
)

func (s *Server) routes() {
	b := s.b
	// system
	s.handle("GET /_ping", true, s.ping) // also HEAD
	s.handle("GET /version", true, s.version)
	s.handle("GET /info", b.System != nil, s.info)
	s.handle("GET /events", b.System != nil, s.events)
	s.handle("GET /system/df", b.System != nil, s.diskUsage)
	s.handle("POST /auth", b.Registry != nil, s.auth)
	// Not berth's job (yet): a clear 501 rather than "page not found".
	s.handle("POST /build", false, nil)
	s.handle("POST /session", false, nil)
	s.handle("GET /swarm", false, nil)

	s.containerRoutes()
	s.imageRoutes()
	s.networkVolumeRoutes()

	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		rw := &respWriter{ResponseWriter: w}
		s.writeError(rw, r, notFound("page not found"), 0)
	})
}

func (s *Server) ping(w http.ResponseWriter, r *http.Request) error {
	h := w.Header()
	h.Set("Cache-Control", "no-cache, no-store, must-revalidate")
	h.Set("Pragma", "no-cache")
	h.Set("Docker-Experimental", boolString(s.opts.Experimental))
	h.Set("Content-Type", "text/plain; charset=utf-8")
	if r.Method == http.MethodHead {
		h.Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
		return nil
	}
	_, err := w.Write([]byte("OK"))
	return err
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func (s *Server) version(w http.ResponseWriter, r *http.Request) error {
	v := system.VersionResponse{
		Platform:  system.PlatformInfo{Name: "berth"},
		Version:   EngineVersion,
		Os:        runtime.GOOS,
		Arch:      runtime.GOARCH,
		GoVersion: runtime.Version(),
	}
	if s.b.System != nil {
		var err error
		if v, err = s.b.System.SystemVersion(r.Context()); err != nil {
			return err
		}
	}
	if v.Version == "" {
		v.Version = EngineVersion
	}
	if v.Os == "" {
		v.Os, v.Arch = runtime.GOOS, runtime.GOARCH
	}
	v.APIVersion, v.MinAPIVersion = MaxAPIVersion, MinAPIVersion
	v.Experimental = s.opts.Experimental
	if len(v.Components) == 0 {
		v.Components = []system.ComponentVersion{{Name: "Engine", Version: v.Version}}
	}
	for i := range v.Components {
		if v.Components[i].Name != "Engine" {
			continue
		}
		d := map[string]string{}
		for k, val := range v.Components[i].Details {
			d[k] = val
		}
		d["ApiVersion"], d["MinAPIVersion"] = MaxAPIVersion, MinAPIVersion
		d["Os"], d["Arch"], d["Experimental"] = v.Os, v.Arch, boolString(v.Experimental)
		if v.GoVersion != "" {
			d["GoVersion"] = v.GoVersion
		}
		if v.KernelVersion != "" {
			d["KernelVersion"] = v.KernelVersion
		}
		if v.GitCommit != "" {
			d["GitCommit"] = v.GitCommit
		}
		v.Components[i].Details = d
	}
	return writeJSON(w, http.StatusOK, v)
}

func (s *Server) info(w http.ResponseWriter, r *http.Request) error {
	info, err := s.b.System.SystemInfo(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, shapeInfo(apiVersion(r), info))
}

func (s *Server) diskUsage(w http.ResponseWriter, r *http.Request) error {
	var opts backend.DiskUsageOptions
	for _, t := range r.URL.Query()["type"] {
		switch system.DiskUsageObject(t) {
		case system.ContainerObject, system.ImageObject, system.VolumeObject, system.BuildCacheObject:
			opts.Types = append(opts.Types, system.DiskUsageObject(t))
		default:
			return invalidArg("unknown object type: %s", t)
		}
	}
	du, err := s.b.System.SystemDiskUsage(r.Context(), opts)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, shapeDiskUsage(apiVersion(r), du))
}

var eventFilterTerms = []string{"config", "container", "daemon", "event", "image", "label", "network", "node", "plugin", "scope", "secret", "service", "type", "volume"}

func (s *Server) events(w http.ResponseWriter, r *http.Request) error {
	now := time.Now()
	since, err := parseTime(r.URL.Query().Get("since"), now)
	if err != nil {
		return err
	}
	until, err := parseTime(r.URL.Query().Get("until"), now)
	if err != nil {
		return err
	}
	if !since.IsZero() && !until.IsZero() && until.Before(since) {
		return invalidArg("`since` time (%s) cannot be after `until` time (%s)", r.URL.Query().Get("since"), r.URL.Query().Get("until"))
	}
	f, err := filtersParam(r)
	if err != nil {
		return err
	}
	if bad := f.Validate(eventFilterTerms...); bad != "" {
		return invalidArg("invalid filter '%s'", bad)
	}
	ctx := r.Context()
	ch, err := s.b.System.SystemEvents(ctx, backend.EventsOptions{Since: since, Until: until, Filters: f})
	if err != nil {
		return err
	}
	out := newJSONLines(w, "application/json")
	w.WriteHeader(http.StatusOK)
	flush(w)

	// With until in the future, stop when it passes; the backend closes
	// the channel after its replay when until is already past.
	var deadline <-chan time.Time
	if !until.IsZero() && until.After(time.Now()) {
		t := time.NewTimer(time.Until(until))
		defer t.Stop()
		deadline = t.C
	}
	version := apiVersion(r)
	send := func(m events.Message) bool {
		if !until.IsZero() && eventTime(m).After(until) {
			return false
		}
		if (!since.IsZero() && eventTime(m).Before(since)) || !matchEvent(f, m) {
			return true
		}
		return out.send(shapeEvent(version, m)) == nil // false: client went away
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-deadline:
			for { // deliver what was already queued, then end
				select {
				case m, ok := <-ch:
					if !ok || !send(m) {
						return nil
					}
				default:
					return nil
				}
			}
		case m, ok := <-ch:
			if !ok || !send(m) {
				return nil
			}
		}
	}
}

func eventTime(m events.Message) time.Time {
	if m.TimeNano != 0 {
		return time.Unix(0, m.TimeNano)
	}
	return time.Unix(m.Time, 0)
}

// matchEvent applies docker's event filters to one message.
func matchEvent(f backend.Filters, m events.Message) bool {
	if f.Len() == 0 {
		return true
	}
	action := string(m.Action)
	if f.Has("event") && !f.ExactMatch("event", action) {
		prefix, _, _ := strings.Cut(action, ":")
		if !f.ExactMatch("event", prefix) {
			return false
		}
	}
	if !f.ExactMatch("type", string(m.Type)) || !f.ExactMatch("scope", m.Scope) {
		return false
	}
	if !f.MatchKVList("label", m.Actor.Attributes) {
		return false
	}
	for _, t := range []events.Type{events.ContainerEventType, events.DaemonEventType, events.PluginEventType,
		events.VolumeEventType, events.NetworkEventType, events.NodeEventType, events.ServiceEventType,
		events.SecretEventType, events.ConfigEventType} {
		term := string(t)
		if !f.Has(term) {
			continue
		}
		if m.Type != t || !(fuzzy(f, term, m.Actor.ID) || fuzzy(f, term, m.Actor.Attributes["name"])) {
			return false
		}
	}
	if f.Has("image") {
		nameAttr := "image"
		if m.Type == events.ImageEventType {
			nameAttr = "name"
		}
		name := m.Actor.Attributes[nameAttr]
		if !(f.ExactMatch("image", m.Actor.ID) || f.ExactMatch("image", name) ||
			f.ExactMatch("image", stripTag(m.Actor.ID)) || f.ExactMatch("image", stripTag(name))) {
			return false
		}
	}
	return true
}

// fuzzy is docker's FuzzyMatch: exact, or a value that is a prefix (IDs).
func fuzzy(f backend.Filters, term, source string) bool {
	if source == "" {
		return false
	}
	for v := range f[term] {
		if v == source || strings.HasPrefix(source, v) {
			return true
		}
	}
	return false
}

// stripTag drops ":tag" (not a registry port) from an image reference.
func stripTag(ref string) string {
	i := strings.LastIndex(ref, ":")
	if i < 0 || strings.Contains(ref[i:], "/") {
		return ref
	}
	return ref[:i]
}

func (s *Server) auth(w http.ResponseWriter, r *http.Request) error {
	var cfg registry.AuthConfig
	if err := decodeJSON(r, &cfg); err != nil {
		return err
	}
	resp, err := s.b.Registry.RegistryLogin(r.Context(), cfg)
	if err != nil {
		return err
	}
	if resp.Status == "" {
		resp.Status = "Login Succeeded"
	}
	return writeJSON(w, http.StatusOK, resp)
}

// registryAuth decodes the X-Registry-Auth header (base64url JSON).
func registryAuth(r *http.Request) (registry.AuthConfig, error) {
	cfg, err := authconfig.Decode(r.Header.Get(registry.AuthHeader))
	if err != nil {
		return registry.AuthConfig{}, err
	}
	return *cfg, nil
}
