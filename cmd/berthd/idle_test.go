package main

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestIdleTrimWaitsForRequests: no trim while a request (e.g. a hijacked
// attach) is in flight; the timer is re-armed when the last one ends.
func TestIdleTrimWaitsForRequests(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{})
	h := newIdleTrim(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		w.WriteHeader(http.StatusNoContent)
	}), time.Hour)
	done := make(chan int)
	go func() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/_ping", nil))
		done <- rec.Code
	}()
	<-entered
	h.mu.Lock()
	n := h.inflight
	h.mu.Unlock()
	if n != 1 {
		t.Fatalf("in flight: %d, want 1", n)
	}
	close(release)
	if code := <-done; code != http.StatusNoContent {
		t.Fatalf("status %d, want 204", code)
	}
	h.mu.Lock()
	n = h.inflight
	h.mu.Unlock()
	if n != 0 {
		t.Fatalf("in flight after the request: %d, want 0", n)
	}
}

// TestMadviseTextKeepsProgramWorking pages out this test binary's text and
// read-only data, then runs code and reads data from it: both fault back
// in from the file.
func TestMadviseTextKeepsProgramWorking(t *testing.T) {
	re := regexp.MustCompile(`^a(b+)c$`)
	madviseText(unix.MADV_PAGEOUT)
	if m := re.FindStringSubmatch("abbbc"); len(m) != 2 || m[1] != "bbb" {
		t.Fatalf("regexp after page-out: %q", m)
	}
	if got := daemonUsage[:6]; got != "Usage:" {
		t.Fatalf("read-only data after page-out: %q", got)
	}
}
