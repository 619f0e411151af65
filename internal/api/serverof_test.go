package api

import (
	"net/http"
	"testing"
)

type wrapped struct{ next http.Handler }

func (w wrapped) ServeHTTP(rw http.ResponseWriter, r *http.Request) { w.next.ServeHTTP(rw, r) }
func (w wrapped) Unwrap() http.Handler                              { return w.next }

// Serve must find the server behind middleware to close its hijacked
// connections at shutdown.
func TestServerOfUnwrapsMiddleware(t *testing.T) {
	s := &Server{}
	if serverOf(wrapped{wrapped{s}}) != s {
		t.Fatal("server not found through two wrappers")
	}
	if serverOf(http.NotFoundHandler()) != nil {
		t.Fatal("a foreign handler is not a server")
	}
}
