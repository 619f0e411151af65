package cgroups

import (
	"os"
	"slices"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// testConformance is the behaviour every Manager must have, whatever the
// hierarchy: lifecycle, process listing, freezing, signalling, removal.
// mk returns a fresh, not yet applied Manager.
func testConformance(t *testing.T, mk func(t *testing.T) Manager) {
	t.Run("ApplyZeroCreatesOnly", func(t *testing.T) {
		m := mk(t)
		if err := m.Apply(0); err != nil {
			t.Fatal(err)
		}
		for c, d := range m.Paths() {
			if !exists(d) {
				t.Errorf("%q: %s not created", c, d)
			}
		}
		if pids, err := m.Pids(); err != nil || len(pids) != 0 {
			t.Errorf("Pids = %v, %v", pids, err)
		}
		if err := m.Apply(0); err != nil {
			t.Errorf("second Apply: %v", err)
		}
	})
	t.Run("PidsRecursive", func(t *testing.T) {
		m := mk(t)
		a, b := startSleep(t), startSleep(t)
		if err := m.Apply(a.Process.Pid); err != nil {
			t.Fatal(err)
		}
		// b goes to a sub-cgroup of one hierarchy only (v2's single one,
		// or v1's freezer, as systemd in a container would do).
		paths := m.Paths()
		dir := paths[""]
		if dir == "" {
			dir = paths["freezer"]
		}
		if dir == "" {
			t.Skip("no freezer hierarchy")
		}
		if err := os.Mkdir(dir+"/sub", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := writeFile(dir+"/sub", "cgroup.procs", itoa(int64(b.Process.Pid))); err != nil {
			t.Fatal(err)
		}
		pids, err := m.Pids()
		slices.Sort(pids)
		want := []int{a.Process.Pid, b.Process.Pid}
		slices.Sort(want)
		if err != nil || !slices.Equal(pids, want) {
			t.Errorf("Pids = %v, %v; want %v", pids, err, want)
		}
		if err := m.Destroy(); err != nil {
			t.Fatal(err)
		}
		for _, c := range []*struct{ p *os.Process }{{a.Process}, {b.Process}} {
			if err := c.p.Signal(syscall.Signal(0)); err == nil {
				// still a zombie until reaped: reap and check the signal
				st, _ := c.p.Wait()
				if st != nil && st.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
					t.Errorf("pid %d: %v", c.p.Pid, st)
				}
			}
		}
	})
	t.Run("FreezeThaw", func(t *testing.T) {
		m := mk(t)
		sl := startSleep(t)
		if err := m.Apply(sl.Process.Pid); err != nil {
			t.Fatal(err)
		}
		if f, err := m.Frozen(); err != nil || f {
			t.Fatalf("Frozen before Freeze = %v, %v", f, err)
		}
		if err := m.Freeze(); err != nil {
			t.Fatal(err)
		}
		if f, err := m.Frozen(); err != nil || !f {
			t.Errorf("Frozen = %v, %v", f, err)
		}
		if err := m.Thaw(); err != nil {
			t.Fatal(err)
		}
		if f, err := m.Frozen(); err != nil || f {
			t.Errorf("Frozen after Thaw = %v, %v", f, err)
		}
	})
	t.Run("KillSignals", func(t *testing.T) {
		for _, sig := range []unix.Signal{unix.SIGTERM, unix.SIGKILL} {
			m := mk(t)
			sl := startSleep(t)
			if err := m.Apply(sl.Process.Pid); err != nil {
				t.Fatal(err)
			}
			if err := m.Kill(sig); err != nil {
				t.Fatal(err)
			}
			if st := waitExit(t, sl); st.Sys().(syscall.WaitStatus).Signal() != syscall.Signal(sig) {
				t.Errorf("%v: exit %v", sig, st)
			}
		}
	})
	t.Run("DestroyIdempotent", func(t *testing.T) {
		m := mk(t)
		if err := m.Destroy(); err != nil {
			t.Errorf("Destroy before Apply: %v", err)
		}
		if err := m.Apply(0); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 2; i++ {
			if err := m.Destroy(); err != nil {
				t.Fatal(err)
			}
		}
		for c, d := range m.Paths() {
			if exists(d) {
				t.Errorf("%q: %s left behind", c, d)
			}
		}
	})
	t.Run("Stats", func(t *testing.T) {
		m := mk(t)
		sl := startSleep(t)
		if err := m.Apply(sl.Process.Pid); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Stats(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestConformanceV1(t *testing.T) {
	testConformance(t, func(t *testing.T) Manager {
		m, _ := newV1Test(t)
		return m
	})
}

func TestConformanceV2(t *testing.T) {
	testConformance(t, func(t *testing.T) Manager { return newV2Test(t) })
}
