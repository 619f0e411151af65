package backend

import (
	"errors"
	"io"
)

// DefaultDetachKeys is docker's ctrl-p ctrl-q.
var DefaultDetachKeys = []byte{16, 17}

// ErrDetached is returned by a DetachReader when the client typed the
// detach sequence; the attach (not the container) ends.
var ErrDetached = errors.New("detached from container")

// DetachReader copies stdin and stops at the detach key sequence: the
// sequence's bytes are held back while they match, released if the match
// breaks or stdin ends, and swallowed with ErrDetached when it completes. Only with a
// TTY does docker honour detach keys.
type DetachReader struct {
	r       io.Reader
	keys    []byte
	matched int    // bytes of keys matched so far (held back)
	pending []byte // bytes to emit before reading more
}

// NewDetachReader wraps r; keys nil or empty means no detaching.
func NewDetachReader(r io.Reader, keys []byte) *DetachReader {
	return &DetachReader{r: r, keys: keys}
}

func (d *DetachReader) Read(p []byte) (int, error) {
	if len(d.pending) > 0 {
		n := copy(p, d.pending)
		d.pending = d.pending[n:]
		return n, nil
	}
	if len(d.keys) == 0 {
		return d.r.Read(p)
	}
	buf := make([]byte, len(p))
	n, err := d.r.Read(buf)
	out := p[:0]
	for _, b := range buf[:n] {
		if b == d.keys[d.matched] {
			d.matched++
			if d.matched == len(d.keys) {
				return len(out), ErrDetached
			}
			continue
		}
		// The match broke: release what was held back, then this byte
		// (which may itself start a new match).
		held := d.keys[:d.matched]
		d.matched = 0
		for _, h := range held {
			out = d.emit(out, p, h)
		}
		if b == d.keys[0] {
			d.matched = 1
			continue
		}
		out = d.emit(out, p, b)
	}
	if err != nil && d.matched > 0 { // stdin ended mid-sequence: release it
		for _, h := range d.keys[:d.matched] {
			out = d.emit(out, p, h)
		}
		d.matched = 0
		if len(d.pending) > 0 {
			return len(out), nil // the error comes back on the next Read
		}
	}
	if len(out) == 0 && err == nil {
		return d.Read(p) // everything held back; read more
	}
	return len(out), err
}

// emit appends b to out while p has room, else to pending.
func (d *DetachReader) emit(out, p []byte, b byte) []byte {
	if len(out) < len(p) && len(d.pending) == 0 {
		return append(out, b)
	}
	d.pending = append(d.pending, b)
	return out
}
