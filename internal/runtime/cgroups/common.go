package cgroups

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

var pageSize = int64(os.Getpagesize())

func itoa(v int64) string  { return strconv.FormatInt(v, 10) }
func utoa(v uint64) string { return strconv.FormatUint(v, 10) }

// errInvalid builds a validation error naming the file and the value.
func errInvalid(file string, val any, why string) error {
	return fmt.Errorf("cgroup: %s: invalid value %v: %s: %w", file, val, why, errInvalidArgument)
}

// readProcs reads cgroup.procs of dir and of every cgroup below it.
func readProcs(dir string, out []int) ([]int, error) {
	s, err := readFile(dir, "cgroup.procs")
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return out, nil
		}
		return out, err
	}
	for _, f := range strings.Fields(s) {
		if pid, err := strconv.Atoi(f); err == nil {
			out = append(out, pid)
		}
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return out, nil // removed under us
	}
	for _, e := range ents {
		if e.IsDir() {
			if out, err = readProcs(dir+"/"+e.Name(), out); err != nil {
				return out, err
			}
		}
	}
	return out, nil
}

// signalAll sends sig to every pid; a process that exited meanwhile is fine.
func signalAll(pids []int, sig unix.Signal) error {
	var errs []error
	for _, pid := range pids {
		if err := unix.Kill(pid, sig); err != nil && err != unix.ESRCH {
			errs = append(errs, fmt.Errorf("kill %d: %w", pid, err))
		}
	}
	return errors.Join(errs...)
}

// rmdirAll removes dir and every cgroup below it, deepest first. The common
// case (no sub-cgroups) is one rmdir without reading the directory.
func rmdirAll(dir string) error {
	err := unix.Rmdir(dir)
	if err == nil || err == unix.ENOENT {
		return nil
	}
	if err == unix.EBUSY || err == unix.ENOTEMPTY || err == unix.EEXIST {
		ents, rerr := os.ReadDir(dir)
		if rerr == nil {
			sub := false
			for _, e := range ents {
				if e.IsDir() {
					sub = true
					if err := rmdirAll(dir + "/" + e.Name()); err != nil {
						return err
					}
				}
			}
			if sub {
				err = unix.Rmdir(dir)
				if err == nil || err == unix.ENOENT {
					return nil
				}
			}
		}
	}
	return &os.PathError{Op: "rmdir", Path: dir, Err: err}
}

// destroyDirs removes dirs; on EBUSY it kills the cgroup's processes and
// retries with a short backoff (exiting processes leave the cgroup a little
// after the signal).
func destroyDirs(dirs []string, kill func() error) error {
	var last error
	delay := time.Millisecond
	for try := 0; try < 12; try++ {
		last = nil
		for _, d := range dirs {
			if err := rmdirAll(d); err != nil {
				last = err
			}
		}
		if last == nil {
			return nil
		}
		if try == 0 || try%4 == 3 {
			_ = kill()
		}
		time.Sleep(delay)
		if delay < 100*time.Millisecond {
			delay *= 2
		}
	}
	return fmt.Errorf("cgroup: destroy: %w", last)
}

// deviceRule renders an OCI device rule the way devices.allow wants it:
// "c 1:3 rwm", with "*" for a missing major or minor.
func deviceRule(d specs.LinuxDeviceCgroup) (string, error) {
	t := d.Type
	if t == "" {
		t = "a"
	}
	if t != "a" && t != "b" && t != "c" {
		return "", errInvalid("devices", t, `device type must be "a", "b" or "c"`)
	}
	num := func(p *int64) string {
		if p == nil || *p < 0 {
			return "*"
		}
		return itoa(*p)
	}
	acc := d.Access
	if acc == "" {
		acc = "rwm"
	}
	for _, c := range acc {
		if c != 'r' && c != 'w' && c != 'm' {
			return "", errInvalid("devices", acc, `access must be made of "r", "w" and "m"`)
		}
	}
	return t + " " + num(d.Major) + ":" + num(d.Minor) + " " + acc, nil
}

// isDenyAll reports whether d denies every device.
func isDenyAll(d specs.LinuxDeviceCgroup) bool {
	if d.Allow || !(d.Type == "" || d.Type == "a") {
		return false
	}
	if (d.Major != nil && *d.Major >= 0) || (d.Minor != nil && *d.Minor >= 0) {
		return false
	}
	return d.Access == "" || (strings.Contains(d.Access, "r") && strings.Contains(d.Access, "w") && strings.Contains(d.Access, "m"))
}

var (
	hugeOnce  sync.Once
	hugeSizes []string
)

// hugePageSizes lists the host's huge page sizes as cgroup file infixes
// ("2MB", "1GB"), from /sys/kernel/mm/hugepages/hugepages-2048kB.
func hugePageSizes() []string {
	hugeOnce.Do(func() {
		ents, _ := os.ReadDir("/sys/kernel/mm/hugepages")
		for _, e := range ents {
			s := strings.TrimSuffix(strings.TrimPrefix(e.Name(), "hugepages-"), "kB")
			kb, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				continue
			}
			hugeSizes = append(hugeSizes, hugeName(kb*1024))
		}
		sort.Strings(hugeSizes)
	})
	return hugeSizes
}

func hugeName(b uint64) string {
	units := []string{"B", "KB", "MB", "GB", "TB", "PB"}
	i := 0
	for b >= 1024 && b%1024 == 0 && i < len(units)-1 {
		b /= 1024
		i++
	}
	return utoa(b) + units[i]
}

// checkHugeSize refuses a page size the host does not have.
func checkHugeSize(size string) error {
	for _, s := range hugePageSizes() {
		if s == size {
			return nil
		}
	}
	return fmt.Errorf("cgroup: hugepage size %q not supported by this host (have %v): %w", size, hugePageSizes(), ErrNotAvailable)
}

// waitFor polls cond (about 1 ms apart) for up to d.
func waitFor(d time.Duration, cond func() (bool, error)) (bool, error) {
	deadline := time.Now().Add(d)
	sleep := 100 * time.Microsecond
	for {
		ok, err := cond()
		if err != nil || ok {
			return ok, err
		}
		if time.Now().After(deadline) {
			return false, nil
		}
		time.Sleep(sleep)
		if sleep < 5*time.Millisecond {
			sleep *= 2
		}
	}
}

// cpuSharesToWeight maps v1 cpu.shares [2, 262144] onto v2 cpu.weight
// [1, 10000] linearly, as runc, crun and containerd do.
func cpuSharesToWeight(shares uint64) uint64 {
	if shares == 0 {
		return 0
	}
	return 1 + ((shares-2)*9999)/262142
}

// cpuWeightToShares is the inverse, for unified keys on v1.
func cpuWeightToShares(w uint64) uint64 {
	return 2 + ((w-1)*262142)/9999
}

// blkioWeightToIOWeight maps blkio.weight [10, 1000] onto io.weight [1, 10000].
func blkioWeightToIOWeight(w uint64) uint64 {
	if w == 0 {
		return 0
	}
	return 1 + (w-10)*9999/990
}

// swapToV2 turns OCI's memory+swap into v2's swap-only memory.swap.max.
// -1 means unlimited, 0 unset; returned as -1, 0, or the byte count.
func swapToV2(swap, limit int64) (int64, error) {
	if limit == -1 && swap == 0 {
		return -1, nil // unlimited memory without an explicit swap: unlimited swap too
	}
	if swap == -1 || swap == 0 {
		return swap, nil
	}
	if limit == 0 || limit == -1 {
		return 0, errInvalid("memory.swap.max", swap, "a swap limit needs a memory limit")
	}
	if swap < limit {
		return 0, errInvalid("memory.swap.max", swap, fmt.Sprintf("memory+swap must be >= memory limit %d", limit))
	}
	return swap - limit, nil
}
