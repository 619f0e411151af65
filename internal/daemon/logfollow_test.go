package daemon

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestLogCursor: a re-read from before the cursor passes only lines after
// it, counting lines that share a timestamp.
func TestLogCursor(t *testing.T) {
	t0 := time.Unix(100, 0)
	ts := []time.Time{t0, t0.Add(1), t0.Add(1), t0.Add(2), t0.Add(2), t0.Add(2), t0.Add(3)}
	var c logCursor
	// first pass: the first 5 lines (two of the three stamped t0+2)
	for i, tm := range ts[:5] {
		if !c.pass(tm) {
			t.Fatalf("first pass, line %d not fresh", i)
		}
	}
	// a rotation: everything read again from the start
	c.again()
	var got []int
	for i, tm := range ts {
		if c.pass(tm) {
			got = append(got, i)
		}
	}
	if len(got) != 2 || got[0] != 5 || got[1] != 6 {
		t.Fatalf("re-read passed lines %v, want [5 6]", got)
	}
	// and again, from the middle: nothing new
	c.again()
	for i, tm := range ts[3:] {
		if c.pass(tm) {
			t.Fatalf("second re-read passed line %d", i+3)
		}
	}
}

// TestLogCursorClockBack: outside a re-read every line passes, also when
// the clock stepped back.
func TestLogCursorClockBack(t *testing.T) {
	t0 := time.Unix(100, 0)
	var c logCursor
	for i, tm := range []time.Time{t0, t0.Add(5), t0.Add(2), t0.Add(2), t0.Add(1)} {
		if !c.pass(tm) {
			t.Fatalf("line %d (clock back) dropped", i)
		}
	}
}

// TestFollowLogAcrossQuickRotations: two rotations (one compressed)
// between two looks of the follower lose no line and repeat none.
func TestFollowLogAcrossQuickRotations(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c-json.log")
	n := 0
	t0 := time.Now()
	write := func(f *os.File, k int) {
		for i := 0; i < k; i++ {
			n++
			// pairs of lines share a timestamp, as lines of one read do
			b, _ := json.Marshal(jsonLogLine{Log: fmt.Sprintf("%d\n", n), Stream: "stdout", Time: t0.Add(time.Duration(n/2) * time.Millisecond)})
			if _, err := f.Write(append(b, '\n')); err != nil {
				t.Fatal(err)
			}
		}
	}
	rotate := func(gz bool) *os.File {
		for k := 9; k >= 1; k-- {
			for _, sfx := range []string{"", ".gz"} {
				_ = os.Rename(fmt.Sprintf("%s.%d%s", path, k, sfx), fmt.Sprintf("%s.%d%s", path, k+1, sfx))
			}
		}
		if err := os.Rename(path, path+".1"); err != nil {
			t.Fatal(err)
		}
		if gz {
			b, _ := os.ReadFile(path + ".1")
			var zb bytes.Buffer
			zw := gzip.NewWriter(&zb)
			_, _ = zw.Write(b)
			_ = zw.Close()
			_ = os.WriteFile(path+".1.gz", zb.Bytes(), 0o600)
			_ = os.Remove(path + ".1")
		}
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	w, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	write(w, 10)
	r, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var seen logCursor
	exitCh := make(chan struct{})
	var got []string
	done := make(chan struct{})
	d := &Daemon{}
	go func() {
		defer close(done)
		d.followLog(context.Background(), r, path, exitCh, func(l jsonLogLine) bool {
			got = append(got, strings.TrimSpace(l.Log))
			return true
		}, &seen)
	}()
	time.Sleep(100 * time.Millisecond) // the follower reaches EOF and waits
	write(w, 5)
	w.Close()
	w = rotate(true) // compressed, as with compress=true
	write(w, 7)
	w.Close()
	w = rotate(false)
	write(w, 3)
	w.Close()
	close(exitCh)
	<-done
	if len(got) != n {
		t.Fatalf("followed %d lines, want %d: %v", len(got), n, got)
	}
	for i, s := range got {
		if s != strconv.Itoa(i+1) {
			t.Fatalf("line %d is %q: %v", i+1, s, got)
		}
	}
}
