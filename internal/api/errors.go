package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/containerd/errdefs"
)

// statusFor is the one place where error classes become HTTP statuses.
// precondition is the route's status for errdefs.FailedPrecondition
// (409 unless the route says otherwise, e.g. 304 for start/stop).
// Do not add status decisions anywhere else.
func statusFor(err error, precondition int) int {
	switch {
	case err == nil:
		return http.StatusOK
	case errdefs.IsNotModified(err):
		return http.StatusNotModified
	case errdefs.IsNotFound(err):
		return http.StatusNotFound
	case errdefs.IsInvalidArgument(err):
		return http.StatusBadRequest
	case errdefs.IsConflict(err), errdefs.IsAlreadyExists(err):
		return http.StatusConflict
	case errdefs.IsFailedPrecondition(err):
		if precondition == 0 {
			return http.StatusConflict
		}
		return precondition
	case errdefs.IsUnauthorized(err):
		return http.StatusUnauthorized
	case errdefs.IsPermissionDenied(err):
		return http.StatusForbidden
	case errdefs.IsNotImplemented(err):
		return http.StatusNotImplemented
	case errdefs.IsUnavailable(err):
		return http.StatusServiceUnavailable
	case errdefs.IsCanceled(err), errors.Is(err, context.Canceled):
		return 499 // client closed request; never seen by a live client
	case errdefs.IsDeadlineExceeded(err), errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}

// writeError answers err as docker does: {"message": "..."} with the
// mapped status, or, if the response already started, only logs it (the
// stream handlers report in-stream errors themselves before returning).
func (s *Server) writeError(w *respWriter, r *http.Request, err error, precondition int) {
	code := statusFor(err, precondition)
	attrs := []any{"method", r.Method, "path", r.URL.Path, "status", code, "err", err}
	if code >= 500 && code != http.StatusNotImplemented {
		s.log.Error("api request failed", attrs...)
	} else {
		s.log.Debug("api request failed", attrs...)
	}
	if w.wrote || w.hijacked {
		return
	}
	if code == http.StatusNotModified {
		w.WriteHeader(code)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(struct {
		Message string `json:"message"`
	}{err.Error()})
}

// invalidArg builds a docker-style 400 error.
func invalidArg(format string, args ...any) error {
	return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf(format, args...))
}

func errNotImplemented(what string) error {
	return errdefs.ErrNotImplemented.WithMessage(fmt.Sprintf("%s is not implemented by this daemon", what))
}

func notFound(msg string) error { return errdefs.ErrNotFound.WithMessage(msg) }
