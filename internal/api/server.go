// Package api serves the Docker Engine API over the interfaces in
// internal/api/backend.
//
// Request flow (everything version-dependent happens at the edge):
//
//	conn ─► versionMiddleware: strip "/v1.NN", reject <1.24 or >1.41 (400),
//	        │                  remember the version in the request context
//	        ▼
//	     http.ServeMux (Go 1.22 patterns) ─► handler(w, r) error
//	        │   decode + normalize (normalize.go) ─► backend method
//	        │   encode (+ downgrade for old versions, normalize.go)
//	        ▼
//	     on error: writeError → statusFor (errors.go, the only place that
//	     maps error classes to HTTP status) → {"message": err.Error()}
//
// Streams: events, logs, stats, pull/push progress and wait flush as they
// go; attach and exec start hijack the connection (hijack.go).
package api

import (
	"context"
	"log/slog"
	"net/http"
	"strings"

	"github.com/berth-dev/berth/internal/api/backend"
)

// Backends are the implementations the routers call. Any may be nil: its
// routes then answer 501 Not Implemented. The daemon usually passes one
// value for all of them.
type Backends struct {
	Containers     backend.ContainerBackend
	ContainerInfo  backend.ContainerInfoBackend
	ContainerAdmin backend.ContainerAdminBackend
	Streams        backend.StreamBackend
	Archive        backend.ArchiveBackend
	Exec           backend.ExecBackend
	Images         backend.ImageBackend
	Registry       backend.RegistryBackend
	ImageArchive   backend.ImageArchiveBackend
	System         backend.SystemBackend
	Networks       backend.NetworkBackend
	Volumes        backend.VolumeBackend
}

// Options tune the handler.
type Options struct {
	Logger *slog.Logger // nil: slog.Default()
	// Experimental is advertised in the Docker-Experimental header.
	Experimental bool
}

// Server is the http.Handler for the Docker Engine API.
type Server struct {
	b    Backends
	opts Options
	log  *slog.Logger
	mux  *http.ServeMux

	hijacked conns // closed on shutdown
}

// New builds the handler with every route registered.
func New(b Backends, opts Options) *Server {
	s := &Server{b: b, opts: opts, log: opts.Logger, mux: http.NewServeMux()}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.routes()
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Server", "Docker/"+EngineVersion+" (linux)")
	w.Header().Set("Api-Version", MaxAPIVersion)
	w.Header().Set("Ostype", "linux")
	ver, rest, err := splitVersion(r.URL.Path)
	if err != nil {
		s.writeError(&respWriter{ResponseWriter: w}, r, err, 0)
		return
	}
	if rest != r.URL.Path {
		r2 := new(http.Request)
		*r2 = *r
		u := *r.URL
		u.Path = rest
		if u.RawPath != "" {
			u.RawPath = strings.TrimPrefix(u.RawPath, r.URL.Path[:len(r.URL.Path)-len(rest)])
		}
		r2.URL = &u
		r = r2
	}
	r = r.WithContext(context.WithValue(r.Context(), versionKey{}, ver))
	s.mux.ServeHTTP(w, r)
}

// handlerFunc is what every route implements: it returns an error instead
// of writing one, so that errors are mapped to statuses in one place.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// route options
type routeOpt func(*routeCfg)

type routeCfg struct {
	precondition int // HTTP status for errdefs.FailedPrecondition
}

// preconditionStatus sets the status a FailedPrecondition error gets on
// this route (docker answers 304 when starting a started container).
func preconditionStatus(code int) routeOpt {
	return func(c *routeCfg) { c.precondition = code }
}

// handle registers pattern; enabled false (its backend is nil) makes the
// route answer 501.
func (s *Server) handle(pattern string, enabled bool, h handlerFunc, opts ...routeOpt) {
	cfg := routeCfg{precondition: http.StatusConflict}
	for _, o := range opts {
		o(&cfg)
	}
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		rw := &respWriter{ResponseWriter: w}
		var err error
		if !enabled {
			err = errNotImplemented(pattern)
		} else {
			err = h(rw, r)
		}
		if err != nil {
			s.writeError(rw, r, err, cfg.precondition)
			return
		}
		s.log.Debug("api request", "method", r.Method, "path", r.URL.Path, "status", rw.status)
	})
}

// respWriter remembers whether the response started, so that an error
// after the header went out is not written as a second header.
type respWriter struct {
	http.ResponseWriter
	status   int
	wrote    bool
	hijacked bool
}

func (w *respWriter) WriteHeader(code int) {
	if w.wrote {
		return
	}
	w.wrote, w.status = true, code
	w.ResponseWriter.WriteHeader(code)
}

func (w *respWriter) Write(p []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(p)
}

// Flush sends what is buffered (and the header) now.
func (w *respWriter) Flush() {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *respWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
