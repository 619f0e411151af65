package snapshot_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/snapshot"
	"github.com/berth-dev/berth/internal/testutil"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// BenchmarkUnpackDebian is the unpack half of a pull: for each layer
// Prepare, Decompress+Apply into ApplyTarget, Commit; one syncfs at the end.
// Reports the time of each phase.
func BenchmarkUnpackDebian(b *testing.B) {
	for _, impl := range []struct {
		name string
		open func(string, *bolt.DB) (snapshot.Snapshotter, error)
	}{{"overlay", snapshot.NewOverlay}, {"native", snapshot.NewNative}} {
		b.Run(impl.name, func(b *testing.B) {
			blobs := testutil.DebianLayers(b)
			var total int64
			for _, bl := range blobs {
				total += int64(len(bl))
			}
			b.SetBytes(total)
			ctx := context.Background()
			var tPrep, tApply, tCommit, tSync time.Duration
			cpu0 := cpuTime()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				base := b.TempDir()
				db, err := bolt.Open(filepath.Join(base, "meta.db"), 0o600, nil)
				if err != nil {
					b.Fatal(err)
				}
				sn, err := impl.open(filepath.Join(base, "root"), db)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				parent := ""
				for j, blob := range blobs {
					t0 := time.Now()
					key := fmt.Sprintf("extract-%d", j)
					m, err := sn.Prepare(ctx, key, parent, nil)
					if err != nil {
						b.Fatal(err)
					}
					t1 := time.Now()
					dir, wf, parents, ok := snapshot.ApplyTarget(m)
					if !ok {
						b.Fatal("no apply target")
					}
					rc, err := archive.Decompress(bytes.NewReader(blob))
					if err != nil {
						b.Fatal(err)
					}
					if _, err := archive.Apply(ctx, dir, rc, archive.ApplyOptions{Whiteout: wf, Parents: parents}); err != nil {
						b.Fatal(err)
					}
					rc.Close()
					t2 := time.Now()
					name := fmt.Sprintf("layer-%d", j)
					if err := sn.Commit(ctx, name, key, nil); err != nil {
						b.Fatal(err)
					}
					parent = name
					t3 := time.Now()
					tPrep += t1.Sub(t0)
					tApply += t2.Sub(t1)
					tCommit += t3.Sub(t2)
				}
				t0 := time.Now()
				if err := archive.SyncDir(ctx, base); err != nil {
					b.Fatal(err)
				}
				tSync += time.Since(t0)
				b.StopTimer()
				sn.Close()
				db.Close()
				b.StartTimer()
			}
			n := time.Duration(b.N)
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N)/1e6, "cpu-ms")
			b.ReportMetric(float64((tPrep / n).Milliseconds()), "prepare-ms")
			b.ReportMetric(float64((tApply / n).Milliseconds()), "apply-ms")
			b.ReportMetric(float64((tCommit / n).Milliseconds()), "commit-ms")
			b.ReportMetric(float64((tSync / n).Milliseconds()), "syncfs-ms")
		})
	}
}

// cpuTime is this process's (and its children's) user+system time in nanoseconds: on a shared,
// loaded machine it is steadier than wall time.
func cpuTime() int64 {
	var self, kids unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &self)
	unix.Getrusage(unix.RUSAGE_CHILDREN, &kids) // igzip
	return self.Utime.Nano() + self.Stime.Nano() + kids.Utime.Nano() + kids.Stime.Nano()
}

// BenchmarkUnpackDebianParallel unpacks the three layers at once into base
// overlay snapshots and chains them with CommitOnto (what a pull can do
// with Rebaser), then one syncfs.
func BenchmarkUnpackDebianParallel(b *testing.B) {
	blobs := testutil.DebianLayers(b)
	var total int64
	for _, bl := range blobs {
		total += int64(len(bl))
	}
	b.SetBytes(total)
	ctx := context.Background()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		base := b.TempDir()
		db, err := bolt.Open(filepath.Join(base, "meta.db"), 0o600, nil)
		if err != nil {
			b.Fatal(err)
		}
		sn, err := snapshot.NewOverlay(filepath.Join(base, "root"), db)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		var wg sync.WaitGroup
		errs := make([]error, len(blobs))
		for j, blob := range blobs {
			wg.Add(1)
			go func(j int, blob []byte) {
				defer wg.Done()
				m, err := sn.Prepare(ctx, fmt.Sprintf("extract-%d", j), "", nil)
				if err != nil {
					errs[j] = err
					return
				}
				dir, _, _, _ := snapshot.ApplyTarget(m)
				rc, err := archive.Decompress(bytes.NewReader(blob))
				if err != nil {
					errs[j] = err
					return
				}
				defer rc.Close()
				_, errs[j] = archive.Apply(ctx, dir, rc, archive.ApplyOptions{Whiteout: archive.Overlay})
			}(j, blob)
		}
		wg.Wait()
		parent := ""
		for j := range blobs {
			if errs[j] != nil {
				b.Fatal(errs[j])
			}
			name := fmt.Sprintf("layer-%d", j)
			if err := sn.(snapshot.Rebaser).CommitOnto(ctx, name, fmt.Sprintf("extract-%d", j), parent, nil); err != nil {
				b.Fatal(err)
			}
			parent = name
		}
		if err := archive.SyncDir(ctx, base); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		sn.Close()
		db.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N)/1e6, "cpu-ms")
}

// BenchmarkPrepareCommit: the metadata cost of one empty layer (two bbolt
// transactions, two fsyncs each, plus mkdir/rename).
func BenchmarkPrepareCommit(b *testing.B) {
	base := b.TempDir()
	db, err := bolt.Open(filepath.Join(base, "meta.db"), 0o600, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	sn, err := snapshot.NewOverlay(filepath.Join(base, "root"), db)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	parent := ""
	for i := 0; i < b.N; i++ {
		key, name := fmt.Sprintf("k%d", i), fmt.Sprintf("n%d", i)
		if _, err := sn.Prepare(ctx, key, parent, nil); err != nil {
			b.Fatal(err)
		}
		if err := sn.Commit(ctx, name, key, nil); err != nil {
			b.Fatal(err)
		}
		parent = name
	}
}
