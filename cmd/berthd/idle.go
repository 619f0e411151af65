package main

import (
	"bufio"
	"net/http"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// idleTrim gives memory back when the daemon has served no request for
// idleAfter: what a daemon that sits idle most of the time holds is what
// it costs its host (issue 4: idle PSS ≤ 15 MB).
//
// Two parts:
//   - the Go heap: debug.FreeOSMemory returns freed spans to the kernel;
//   - the executable's text and read-only data. One binary holds the CLI,
//     the daemon and the runtime (~17 MB), and the kernel (6.x, large
//     page-cache folios, fault-around of whole folios) maps nearly all of
//     it into the daemon at start, though most of it runs once or never.
//     MADV_DONTNEED cannot shrink that: the next fault maps whole large
//     folios again. MADV_PAGEOUT reclaims the clean file pages that only
//     the daemon maps (pages a running CLI also maps stay); the next
//     request reads the few it needs back (small pages cost a read each,
//     so this runs only after a quiet second, not between requests).
//
// bench/run.sh (memory section, load average 17-32): idle PSS 18.6 MB →
// 6.1 MB; with 20 containers running 23.8 MB → 10.3 MB.
type idleTrim struct {
	next      http.Handler
	idleAfter time.Duration

	mu       sync.Mutex
	inflight int
	timer    *time.Timer
}

func newIdleTrim(next http.Handler, idleAfter time.Duration) *idleTrim {
	t := &idleTrim{next: next, idleAfter: idleAfter}
	t.timer = time.AfterFunc(idleAfter, t.trim)
	return t
}

// Unwrap lets api.Serve find the API server (to close its hijacked
// connections at shutdown).
func (t *idleTrim) Unwrap() http.Handler { return t.next }

func (t *idleTrim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t.mu.Lock()
	t.inflight++
	t.timer.Stop()
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		t.inflight--
		if t.inflight == 0 {
			t.timer.Reset(t.idleAfter)
		}
		t.mu.Unlock()
	}()
	t.next.ServeHTTP(w, r)
}

func (t *idleTrim) trim() {
	t.mu.Lock()
	busy := t.inflight > 0
	t.mu.Unlock()
	if busy {
		return
	}
	debug.FreeOSMemory()
	madviseText(unix.MADV_PAGEOUT)
	// Again while idle: the runtime forces a GC after two minutes without
	// one, which faults the GC's code back in (whole large folios). Our
	// FreeOSMemory is that GC, followed by the page-out.
	t.mu.Lock()
	if t.inflight == 0 {
		t.timer.Reset(idleRepeat)
	}
	t.mu.Unlock()
}

// idleRepeat is under the runtime's forced-GC period (2 minutes).
const idleRepeat = time.Minute

// madviseText applies advice to the mappings of our own executable that
// are read-only and file-backed (text, rodata). Writable mappings and
// read-only ones that hold private copies (RELRO, written before it was
// made read-only) are left alone.
func madviseText(advice int) {
	var st syscall.Stat_t
	if err := syscall.Stat("/proc/self/exe", &st); err != nil {
		return
	}
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return
	}
	defer f.Close()
	type region struct {
		start, end uintptr
		ok         bool
	}
	var regions []region
	cur := -1
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) >= 5 && strings.Contains(fields[0], "-") && len(fields[1]) == 4 {
			cur = -1
			ino, _ := strconv.ParseUint(fields[4], 10, 64)
			perms := fields[1]
			if ino != st.Ino || perms[1] == 'w' || perms[3] != 'p' {
				continue
			}
			lo, hi, _ := strings.Cut(fields[0], "-")
			s, err1 := strconv.ParseUint(lo, 16, 64)
			e, err2 := strconv.ParseUint(hi, 16, 64)
			if err1 != nil || err2 != nil {
				continue
			}
			regions = append(regions, region{uintptr(s), uintptr(e), true})
			cur = len(regions) - 1
			continue
		}
		// Any anonymous (copied-on-write) page makes the region unsafe.
		if cur >= 0 && len(fields) >= 2 && fields[0] == "Anonymous:" && fields[1] != "0" {
			regions[cur].ok = false
		}
	}
	for _, r := range regions {
		if r.ok {
			_, _, _ = unix.Syscall(unix.SYS_MADVISE, r.start, r.end-r.start, uintptr(advice))
		}
	}
}
