// Command pullbench pulls one image into a fresh berth image store (overlay
// snapshots) and exits: the berth side of bench/pull.sh until the berth CLI
// drives the daemon. -cpuprofile writes a pprof CPU profile.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"time"

	"go.etcd.io/bbolt"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/snapshot"
)

func main() {
	root := flag.String("root", "/var/lib/berth-pullbench", "data root (content store, snapshots, meta.db)")
	native := flag.Bool("native", false, "use the native (copying) snapshotter instead of overlay")
	sync := flag.Bool("sync", false, "syncfs each layer before commit and fsync blobs")
	jobs := flag.Int("jobs", 3, "parallel blob downloads")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile here")
	verbose := flag.Bool("v", false, "print progress events")
	igzip := flag.String("igzip", "", `igzip binary ("" = from PATH, "off" = Go's inflater)`)
	noUnpack := flag.Bool("nounpack", false, "download and verify only (no snapshots), like skopeo copy")
	writers := flag.Int("writers", -1, "file writer goroutines per layer (0: write on the tar goroutine; -1: archive's default)")
	flag.Parse()
	if *writers >= 0 {
		archive.SetWriters(*writers)
	}
	switch *igzip {
	case "off":
		archive.SetGzipHelper("")
	case "":
	default:
		archive.SetGzipHelper(*igzip)
	}
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: pullbench [flags] REF")
		os.Exit(2)
	}
	if err := run(*root, flag.Arg(0), *native, *sync, *noUnpack, *jobs, *cpuprofile, *verbose); err != nil {
		fmt.Fprintln(os.Stderr, "pullbench:", err)
		os.Exit(1)
	}
}

func run(root, ref string, native, sync, noUnpack bool, jobs int, cpuprofile string, verbose bool) error {
	ctx := context.Background()
	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return err
	}
	db, err := bbolt.Open(filepath.Join(root, "meta.db"), 0o600, &bbolt.Options{Timeout: time.Second, NoSync: !sync})
	if err != nil {
		return err
	}
	defer db.Close()
	newSn := snapshot.NewOverlay
	if native {
		newSn = snapshot.NewNative
	}
	sn, err := newSn(filepath.Join(root, "snapshots"), db)
	if err != nil {
		return err
	}
	defer sn.Close()
	var layers image.Layers = &image.SnapshotLayers{Snapshotter: sn, Sync: sync, Root: root}
	if noUnpack {
		layers = nil
	}
	st, err := image.New(ctx, image.Options{
		Root: filepath.Join(root, "content"), DB: db, SyncBlobs: sync, MaxConcurrentDownloads: jobs, Layers: layers,
	})
	if err != nil {
		return err
	}
	start := time.Now()
	img, err := st.Pull(ctx, ref, image.PullOptions{Progress: func(ev image.ProgressEvent) {
		if verbose && ev.Status != image.StatusDownloading && ev.Status != image.StatusExtracting {
			fmt.Fprintf(os.Stderr, "%.3fs %s %s\n", time.Since(start).Seconds(), ev.ID, ev.Status)
		}
	}})
	if err != nil {
		return err
	}
	if verbose {
		fmt.Fprintf(os.Stderr, "pulled %s (%s, %d bytes unpacked) in %s\n", ref, img.ID, img.Size, time.Since(start))
		run, wait := schedstat()
		fmt.Fprintf(os.Stderr, "threads of this process: %.3fs on a CPU, %.3fs runnable but waiting for one (schedstat)\n", run.Seconds(), wait.Seconds())
	}
	return nil
}

// schedstat sums the on-CPU and run-queue wait times of this process's
// live threads: on a loaded machine it tells waiting for a CPU apart from
// waiting for I/O or for another thread.
func schedstat() (run, wait time.Duration) {
	ents, _ := os.ReadDir("/proc/self/task")
	for _, e := range ents {
		b, err := os.ReadFile("/proc/self/task/" + e.Name() + "/schedstat")
		if err != nil {
			continue
		}
		var r, w int64
		if _, err := fmt.Sscan(string(b), &r, &w); err == nil {
			run += time.Duration(r)
			wait += time.Duration(w)
		}
	}
	return run, wait
}
