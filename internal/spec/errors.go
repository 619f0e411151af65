package spec

import (
	"errors"
	"fmt"

	"github.com/containerd/errdefs"
)

// classed keeps docker's exact message while making errors.Is match both the
// errdefs class (for the API's status mapping) and the underlying cause.
type classed struct {
	class error
	err   error
}

func (e classed) Error() string   { return e.err.Error() }
func (e classed) Unwrap() []error { return []error{e.class, e.err} }

func invalidf(format string, args ...any) error {
	return classed{errdefs.ErrInvalidArgument, fmt.Errorf(format, args...)}
}

func notImplementedf(format string, args ...any) error {
	return classed{errdefs.ErrNotImplemented, fmt.Errorf(format, args...)}
}

// invalid classifies err as an invalid argument unless it already carries a class.
func invalid(err error) error {
	if err == nil || errdefs.IsNotFound(err) || errdefs.IsInvalidArgument(err) || errdefs.IsNotImplemented(err) {
		return err
	}
	var c classed
	if errors.As(err, &c) {
		return err
	}
	return classed{errdefs.ErrInvalidArgument, err}
}
