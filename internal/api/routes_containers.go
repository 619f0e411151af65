package api

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"

	"github.com/berth-dev/berth/internal/api/backend"
	"github.com/moby/moby/api/types/container"
)

func (s *Server) containerRoutes() {
	b := s.b
	c, info, admin, st, ar, ex := b.Containers != nil, b.ContainerInfo != nil, b.ContainerAdmin != nil, b.Streams != nil, b.Archive != nil, b.Exec != nil
	notModified := preconditionStatus(http.StatusNotModified)

	s.handle("POST /containers/create", c, s.containerCreate)
	s.handle("POST /containers/{id}/start", c, s.containerStart, notModified)
	s.handle("POST /containers/{id}/stop", c, s.containerStop, notModified)
	s.handle("POST /containers/{id}/restart", c, s.containerRestart)
	s.handle("POST /containers/{id}/kill", c, s.containerKill)
	s.handle("POST /containers/{id}/pause", c, s.simple(func(r *http.Request, id string) error { return s.b.Containers.ContainerPause(r.Context(), id) }))
	s.handle("POST /containers/{id}/unpause", c, s.simple(func(r *http.Request, id string) error { return s.b.Containers.ContainerUnpause(r.Context(), id) }))
	s.handle("POST /containers/{id}/wait", c, s.containerWait)
	// {id...}: `docker rm --link /parent/alias` sends the link's path.
	s.handle("DELETE /containers/{id...}", c, s.containerRemove)

	s.handle("GET /containers/json", info, s.containerList)
	s.handle("GET /containers/{id}/json", info, s.containerInspect)
	s.handle("GET /containers/{id}/top", info, s.containerTop)
	s.handle("GET /containers/{id}/stats", info, s.containerStats)
	s.handle("GET /containers/{id}/changes", info, s.containerChanges)

	s.handle("POST /containers/{id}/rename", admin, s.containerRename)
	s.handle("POST /containers/{id}/update", admin, s.containerUpdate)
	s.handle("POST /containers/prune", admin, s.containerPrune)
	s.handle("POST /commit", admin, s.containerCommit)

	s.handle("POST /containers/{id}/attach", st, s.containerAttach)
	s.handle("GET /containers/{id}/logs", st, s.containerLogs)
	s.handle("POST /containers/{id}/resize", st, s.containerResize)

	s.handle("GET /containers/{id}/archive", ar, s.containerArchiveGet) // and HEAD
	s.handle("PUT /containers/{id}/archive", ar, s.containerArchivePut)
	s.handle("GET /containers/{id}/export", ar, s.containerExport)

	s.handle("POST /containers/{id}/exec", ex, s.execCreate)
	s.handle("POST /exec/{id}/start", ex, s.execStart)
	s.handle("GET /exec/{id}/json", ex, s.execInspect)
	s.handle("POST /exec/{id}/resize", ex, s.execResize)
}

// simple adapts a call that takes only the id and answers 204.
func (s *Server) simple(f func(r *http.Request, id string) error) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := f(r, r.PathValue("id")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

var validContainerName = regexp.MustCompile(`^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

func (s *Server) containerCreate(w http.ResponseWriter, r *http.Request) error {
	name := r.URL.Query().Get("name")
	if name != "" && !validContainerName.MatchString(name) {
		return invalidArg("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name)
	}
	platform, err := parsePlatform(r.URL.Query().Get("platform"))
	if err != nil {
		return err
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	if err != nil {
		return err
	}
	var req container.CreateRequest
	if len(strings.TrimSpace(string(raw))) > 0 {
		if err := json.Unmarshal(raw, &req); err != nil {
			return invalidArg("invalid JSON: %v", err)
		}
	}
	if req.Config == nil {
		return invalidArg("config cannot be empty in order to create a container")
	}
	breq := normalizeCreate(apiVersion(r), req, raw, strings.TrimPrefix(name, "/"))
	breq.Platform = platform
	resp, err := s.b.Containers.ContainerCreate(r.Context(), breq)
	if err != nil {
		return err
	}
	if resp.Warnings == nil {
		resp.Warnings = []string{}
	}
	return writeJSON(w, http.StatusCreated, resp)
}

func (s *Server) containerStart(w http.ResponseWriter, r *http.Request) error {
	if err := s.b.Containers.ContainerStart(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func stopOptions(r *http.Request) (backend.StopOptions, error) {
	opts := backend.StopOptions{Signal: r.URL.Query().Get("signal")}
	if t := r.URL.Query().Get("t"); t != "" {
		n, err := intValue(r, "t", 0)
		if err != nil {
			return opts, err
		}
		opts.Timeout = &n
	}
	return opts, nil
}

func (s *Server) containerStop(w http.ResponseWriter, r *http.Request) error {
	opts, err := stopOptions(r)
	if err != nil {
		return err
	}
	if err := s.b.Containers.ContainerStop(r.Context(), r.PathValue("id"), opts); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) containerRestart(w http.ResponseWriter, r *http.Request) error {
	opts, err := stopOptions(r)
	if err != nil {
		return err
	}
	if err := s.b.Containers.ContainerRestart(r.Context(), r.PathValue("id"), opts); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) containerKill(w http.ResponseWriter, r *http.Request) error {
	if err := s.b.Containers.ContainerKill(r.Context(), r.PathValue("id"), r.URL.Query().Get("signal")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// containerWait answers in two steps: the header as soon as the
// container is known (the docker CLI waits for it before it starts the
// container), the body when the condition is met.
func (s *Server) containerWait(w http.ResponseWriter, r *http.Request) error {
	cond := container.WaitCondition(r.URL.Query().Get("condition"))
	switch cond {
	case "":
		cond = container.WaitConditionNotRunning
	case container.WaitConditionNotRunning, container.WaitConditionNextExit, container.WaitConditionRemoved:
	default:
		return invalidArg("invalid condition: %q", cond)
	}
	ctx := r.Context()
	ch, err := s.b.Containers.ContainerWait(ctx, r.PathValue("id"), cond)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	flush(w)
	var res backend.WaitResult
	select {
	case res = <-ch:
	case <-ctx.Done():
		return nil
	}
	resp := container.WaitResponse{StatusCode: res.StatusCode}
	if res.Err != nil {
		resp.Error = &container.WaitExitError{Message: res.Err.Error()}
	}
	return json.NewEncoder(w).Encode(resp)
}

func (s *Server) containerRemove(w http.ResponseWriter, r *http.Request) error {
	opts := backend.RemoveOptions{Force: boolValue(r, "force"), RemoveVolumes: boolValue(r, "v"), RemoveLink: boolValue(r, "link")}
	if err := s.b.Containers.ContainerRemove(r.Context(), r.PathValue("id"), opts); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) containerList(w http.ResponseWriter, r *http.Request) error {
	f, err := filtersParam(r)
	if err != nil {
		return err
	}
	limit, err := intValue(r, "limit", 0)
	if err != nil {
		return err
	}
	list, err := s.b.ContainerInfo.ContainerList(r.Context(), backend.ListOptions{
		All: boolValue(r, "all"), Limit: limit, Size: boolValue(r, "size"), Filters: f,
	})
	if err != nil {
		return err
	}
	if list == nil {
		list = []container.Summary{}
	}
	return writeJSON(w, http.StatusOK, list)
}

func (s *Server) containerInspect(w http.ResponseWriter, r *http.Request) error {
	c, err := s.b.ContainerInfo.ContainerInspect(r.Context(), r.PathValue("id"), boolValue(r, "size"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, shapeContainerInspect(apiVersion(r), c))
}

func (s *Server) containerTop(w http.ResponseWriter, r *http.Request) error {
	top, err := s.b.ContainerInfo.ContainerTop(r.Context(), r.PathValue("id"), r.URL.Query().Get("ps_args"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, top)
}

func (s *Server) containerStats(w http.ResponseWriter, r *http.Request) error {
	opts := backend.StatsOptions{Stream: boolValueOr(r, "stream", true), OneShot: boolValue(r, "one-shot")}
	if opts.OneShot && opts.Stream {
		return invalidArg("cannot have stream=true and one-shot=true")
	}
	ctx := r.Context()
	ch, err := s.b.ContainerInfo.ContainerStats(ctx, r.PathValue("id"), opts)
	if err != nil {
		return err
	}
	out := newJSONLines(w, "application/json")
	w.WriteHeader(http.StatusOK)
	if opts.Stream {
		flush(w)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case st, ok := <-ch:
			if !ok {
				return nil
			}
			if err := out.send(st); err != nil || !opts.Stream {
				return nil
			}
		}
	}
}

func (s *Server) containerChanges(w http.ResponseWriter, r *http.Request) error {
	ch, err := s.b.ContainerInfo.ContainerChanges(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if ch == nil {
		ch = []container.FilesystemChange{}
	}
	return writeJSON(w, http.StatusOK, ch)
}

func (s *Server) containerRename(w http.ResponseWriter, r *http.Request) error {
	name := strings.TrimPrefix(r.URL.Query().Get("name"), "/")
	if name == "" {
		return invalidArg("Neither old nor new names may be empty")
	}
	if !validContainerName.MatchString(name) {
		return invalidArg("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name)
	}
	if err := s.b.ContainerAdmin.ContainerRename(r.Context(), r.PathValue("id"), name); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) containerUpdate(w http.ResponseWriter, r *http.Request) error {
	var u container.UpdateConfig
	if err := decodeJSON(r, &u); err != nil {
		return err
	}
	normalizeUpdate(apiVersion(r), &u)
	resp, err := s.b.ContainerAdmin.ContainerUpdate(r.Context(), r.PathValue("id"), u)
	if err != nil {
		return err
	}
	if resp.Warnings == nil {
		resp.Warnings = []string{}
	}
	return writeJSON(w, http.StatusOK, resp)
}

func (s *Server) containerPrune(w http.ResponseWriter, r *http.Request) error {
	f, err := filtersParam(r)
	if err != nil {
		return err
	}
	rep, err := s.b.ContainerAdmin.ContainerPrune(r.Context(), f)
	if err != nil {
		return err
	}
	if rep.ContainersDeleted == nil {
		rep.ContainersDeleted = []string{}
	}
	return writeJSON(w, http.StatusOK, rep)
}

func (s *Server) containerCommit(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	var cfg *container.Config
	var c container.Config
	if r.ContentLength != 0 {
		if err := decodeJSON(r, &c); err != nil {
			return err
		}
		cfg = &c
	}
	var changes []string
	for _, ch := range q["changes"] {
		for _, line := range strings.Split(ch, "\n") {
			if strings.TrimSpace(line) != "" {
				changes = append(changes, line)
			}
		}
	}
	resp, err := s.b.ContainerAdmin.ContainerCommit(r.Context(), backend.CommitOptions{
		Container: q.Get("container"), Repo: q.Get("repo"), Tag: q.Get("tag"),
		Comment: q.Get("comment"), Author: q.Get("author"), Changes: changes,
		Pause: boolValueOr(r, "pause", true), Config: cfg,
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, resp)
}

func (s *Server) containerAttach(w http.ResponseWriter, r *http.Request) error {
	keys, err := parseDetachKeys(r.URL.Query().Get("detachKeys"))
	if err != nil {
		return err
	}
	h := &hijacker{s: s, w: w, r: r, wantIn: boolValue(r, "stdin")}
	opts := backend.AttachOptions{
		Stdin: boolValue(r, "stdin"), Stdout: boolValue(r, "stdout"), Stderr: boolValue(r, "stderr"),
		Logs: boolValue(r, "logs"), Stream: boolValue(r, "stream"), DetachKeys: keys,
		Streams: h.streamsFunc(boolValue(r, "stdout"), boolValue(r, "stderr")),
	}
	return h.finish(s.b.Streams.ContainerAttach(r.Context(), r.PathValue("id"), opts))
}

func (s *Server) containerLogs(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	opts := backend.LogsOptions{
		Stdout: boolValue(r, "stdout"), Stderr: boolValue(r, "stderr"),
		Follow: boolValue(r, "follow"), Timestamps: boolValue(r, "timestamps"),
		Tail: q.Get("tail"), Details: boolValue(r, "details"),
	}
	if !opts.Stdout && !opts.Stderr {
		return invalidArg("Bad parameters: you must choose at least one stream")
	}
	if opts.Tail == "" {
		opts.Tail = "all"
	}
	var err error
	if opts.Since, err = parseTime(q.Get("since"), timeNow()); err != nil {
		return err
	}
	if opts.Until, err = parseTime(q.Get("until"), timeNow()); err != nil {
		return err
	}
	ctx := r.Context()
	ls, err := s.b.Streams.ContainerLogs(ctx, r.PathValue("id"), opts)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", logsContentType(apiVersion(r), ls.TTY))
	w.WriteHeader(http.StatusOK)
	flush(w)
	var buf []byte
	for {
		var m backend.LogMessage
		var ok bool
		select {
		case <-ctx.Done():
			return nil
		case m, ok = <-ls.Messages:
		}
		if !ok {
			return nil
		}
		if m.Err != nil {
			s.log.Debug("logs stream ended", "err", m.Err)
			return nil
		}
		line := formatLogLine(m, opts)
		if ls.TTY {
			buf = append(buf[:0], line...)
		} else {
			stream := streamStdout
			if m.Stream == "stderr" {
				stream = streamStderr
			}
			buf = appendFrame(buf[:0], stream, line)
		}
		if _, err := w.Write(buf); err != nil {
			return nil
		}
		if len(ls.Messages) == 0 { // flush when the backlog drained
			flush(w)
		}
	}
}

func formatLogLine(m backend.LogMessage, opts backend.LogsOptions) []byte {
	if !opts.Timestamps && !(opts.Details && len(m.Attrs) > 0) {
		return m.Line
	}
	var b []byte
	if opts.Timestamps {
		b = m.Timestamp.UTC().AppendFormat(b, "2006-01-02T15:04:05.000000000Z07:00")
		b = append(b, ' ')
	}
	if opts.Details && len(m.Attrs) > 0 {
		keys := make([]string, 0, len(m.Attrs))
		for k := range m.Attrs {
			keys = append(keys, k)
		}
		sortStrings(keys)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, k+"="+m.Attrs[k]...)
		}
		b = append(b, ' ')
	}
	return append(b, m.Line...)
}

func (s *Server) containerResize(w http.ResponseWriter, r *http.Request) error {
	h, err := uintValue(r, "h")
	if err != nil {
		return err
	}
	wd, err := uintValue(r, "w")
	if err != nil {
		return err
	}
	if err := s.b.Streams.ContainerResize(r.Context(), r.PathValue("id"), h, wd); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

const pathStatHeader = "X-Docker-Container-Path-Stat"

func setPathStat(w http.ResponseWriter, st container.PathStat) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	w.Header().Set(pathStatHeader, base64.StdEncoding.EncodeToString(b))
	return nil
}

func archivePath(r *http.Request) (string, error) {
	p := r.URL.Query().Get("path")
	if p == "" {
		return "", invalidArg("bad parameter: 'path' cannot be empty")
	}
	return p, nil
}

func (s *Server) containerArchiveGet(w http.ResponseWriter, r *http.Request) error {
	p, err := archivePath(r)
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	if r.Method == http.MethodHead {
		st, err := s.b.Archive.ContainerStatPath(r.Context(), id, p)
		if err != nil {
			return err
		}
		if err := setPathStat(w, st); err != nil {
			return err
		}
		w.WriteHeader(http.StatusOK)
		return nil
	}
	rc, st, err := s.b.Archive.ContainerArchivePath(r.Context(), id, p)
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := setPathStat(w, st); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/x-tar")
	w.WriteHeader(http.StatusOK)
	return abortOnError(io.Copy(w, rc))
}

func (s *Server) containerArchivePut(w http.ResponseWriter, r *http.Request) error {
	p, err := archivePath(r)
	if err != nil {
		return err
	}
	opts := backend.ExtractOptions{NoOverwriteDirNonDir: boolValue(r, "noOverwriteDirNonDir"), CopyUIDGID: boolValue(r, "copyUIDGID")}
	if err := s.b.Archive.ContainerExtractToDir(r.Context(), r.PathValue("id"), p, opts, r.Body); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) containerExport(w http.ResponseWriter, r *http.Request) error {
	rc, err := s.b.Archive.ContainerExport(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/x-tar")
	w.WriteHeader(http.StatusOK)
	return abortOnError(io.Copy(w, rc))
}

func (s *Server) execCreate(w http.ResponseWriter, r *http.Request) error {
	var req container.ExecCreateRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if len(req.Cmd) == 0 {
		return invalidArg("No exec command specified")
	}
	resp, err := s.b.Exec.ExecCreate(r.Context(), r.PathValue("id"), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, resp)
}

func (s *Server) execStart(w http.ResponseWriter, r *http.Request) error {
	var req container.ExecStartRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	opts := backend.ExecStartOptions{Detach: req.Detach, Tty: req.Tty, ConsoleSize: req.ConsoleSize}
	id := r.PathValue("id")
	if req.Detach {
		if err := s.b.Exec.ExecStart(r.Context(), id, opts); err != nil {
			return err
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		return nil
	}
	h := &hijacker{s: s, w: w, r: r, wantIn: true}
	opts.Streams = h.streamsFunc(true, true)
	return h.finish(s.b.Exec.ExecStart(r.Context(), id, opts))
}

func (s *Server) execInspect(w http.ResponseWriter, r *http.Request) error {
	resp, err := s.b.Exec.ExecInspect(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, resp)
}

func (s *Server) execResize(w http.ResponseWriter, r *http.Request) error {
	h, err := uintValue(r, "h")
	if err != nil {
		return err
	}
	wd, err := uintValue(r, "w")
	if err != nil {
		return err
	}
	if err := s.b.Exec.ExecResize(r.Context(), r.PathValue("id"), h, wd); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// parseDetachKeys reads docker's detach key syntax: a comma-separated
// list of single characters and "ctrl-<x>" (x in a-z @ [ \ ] ^ _).
// Empty gives nil (the backend's default).
func parseDetachKeys(s string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	var out []byte
	for _, k := range strings.Split(s, ",") {
		switch {
		case len(k) == 1:
			out = append(out, k[0])
		case strings.HasPrefix(k, "ctrl-") && len(k) == 6:
			c := k[5]
			switch {
			case c >= 'a' && c <= 'z':
				out = append(out, c-'a'+1)
			case strings.IndexByte("@[\\]^_", c) >= 0:
				out = append(out, c&0x1f)
			default:
				return nil, invalidArg("Invalid detach keys (%s) provided", s)
			}
		default:
			return nil, invalidArg("Invalid detach keys (%s) provided", s)
		}
	}
	return out, nil
}
