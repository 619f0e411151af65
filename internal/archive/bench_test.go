package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/testutil"
)

func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func zstdBytes(b []byte) []byte {
	var buf bytes.Buffer
	w, _ := zstd.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

var (
	benchOnce    sync.Once
	benchTar     []byte
	benchGz      []byte
	benchContent int64
	benchFiles   int
)

// benchLayer is the first ~200 MB of /usr/share as a tar: thousands of
// small files plus some large ones, about the size of debian:bookworm's
// unpacked layers (204 MB).
func benchLayer(b *testing.B) {
	benchOnce.Do(func() {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		errStop := errors.New("stop")
		filepath.WalkDir("/usr/share", func(p string, d fs.DirEntry, err error) error {
			if err != nil || p == "/usr/share" {
				return nil
			}
			if benchContent > 200<<20 {
				return errStop
			}
			fi, err := d.Info()
			if err != nil {
				return nil
			}
			link := ""
			if fi.Mode()&fs.ModeSymlink != 0 {
				link, _ = os.Readlink(p)
			}
			h, err := tar.FileInfoHeader(fi, link)
			if err != nil {
				return nil
			}
			h.Name = strings.TrimPrefix(p, "/")
			if fi.IsDir() {
				h.Name += "/"
			}
			var data []byte
			if fi.Mode().IsRegular() {
				if data, err = os.ReadFile(p); err != nil {
					return nil
				}
				h.Size = int64(len(data))
				benchContent += h.Size
				benchFiles++
			}
			tw.WriteHeader(h)
			tw.Write(data)
			return nil
		})
		tw.Close()
		benchTar = buf.Bytes()
		benchGz = gzipBytes(benchTar)
	})
	b.Logf("layer: %d files, %d MB content, tar %d MB, gzip %d MB", benchFiles, benchContent>>20, len(benchTar)>>20, len(benchGz)>>20)
}

func benchApply(b *testing.B, data []byte, decompress bool) {
	benchLayer(b)
	b.SetBytes(int64(len(benchTar)))
	base := benchDir(b)
	b.ResetTimer()
	cpu0 := cpuTime()
	defer func() { b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N)/1e6, "cpu-ms") }()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		dst := filepath.Join(base, "x")
		os.RemoveAll(dst)
		os.Mkdir(dst, 0o755)
		b.StartTimer()
		var r = bytes.NewReader(data)
		var err error
		if decompress {
			rc, derr := Decompress(r)
			if derr != nil {
				b.Fatal(derr)
			}
			_, err = Apply(context.Background(), dst, rc, ApplyOptions{})
			rc.Close()
		} else {
			_, err = Apply(context.Background(), dst, r, ApplyOptions{})
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkApply: MB/s of uncompressed tar turned into files (page cache,
// no fsync).
func BenchmarkApply(b *testing.B) { benchLayer(b); benchApply(b, benchTar, false) }

// BenchmarkApplyGzip: the same layer gzip-compressed, decompression included
// (MB/s of uncompressed tar).
func BenchmarkApplyGzip(b *testing.B) {
	benchLayer(b)
	gzipModes(b, func(tb testing.TB, mode string) {
		b.Run(mode, func(b *testing.B) { benchApply(b, benchGz, true) })
	})
}

// BenchmarkApplyGzipNoReadahead: the same without the decompression
// goroutine.
func BenchmarkApplyGzipNoReadahead(b *testing.B) {
	noReadahead = true
	defer func() { noReadahead = false }()
	SetGzipHelper("")
	defer func() { helperMu.Lock(); helperSet = false; helperMu.Unlock() }()
	benchLayer(b)
	benchApply(b, benchGz, true)
}

// BenchmarkGunzip: decompression alone (Go and igzip), the floor for
// BenchmarkApplyGzip.
func BenchmarkGunzip(b *testing.B) {
	benchLayer(b)
	gzipModes(b, func(tb testing.TB, mode string) {
		b.Run(mode, func(b *testing.B) {
			b.SetBytes(int64(len(benchTar)))
			cpu0 := cpuTime()
			defer func() { b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N)/1e6, "cpu-ms") }()
			for i := 0; i < b.N; i++ {
				rc, err := Decompress(bytes.NewReader(benchGz))
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, rc); err != nil {
					b.Fatal(err)
				}
				rc.Close()
			}
		})
	})
}

// benchDir is where benchmarks unpack: BERTH_BENCH_DIR (say /dev/shm to
// measure CPU cost without the disk), else a temp dir.
func benchDir(b *testing.B) string {
	if d := os.Getenv("BERTH_BENCH_DIR"); d != "" {
		p, err := os.MkdirTemp(d, "archive-bench")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(p) })
		return p
	}
	return b.TempDir()
}

// BenchmarkApplyDebian unpacks the three gzip layers of the debian:bookworm
// OCI layout that shared/peers/make-images.sh builds (95 MB compressed,
// 204 MB unpacked), each into its own overlay upper dir, concurrently as a
// pull does. MB/s are of compressed input.
func BenchmarkApplyDebian(b *testing.B) {
	blobs := testutil.DebianLayers(b)
	var total int64
	for _, l := range blobs {
		total += int64(len(l))
	}
	b.SetBytes(total)
	base := benchDir(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		var dirs []string
		for j := range blobs {
			d := filepath.Join(base, "l"+strconv.Itoa(j))
			os.RemoveAll(d)
			os.Mkdir(d, 0o755)
			dirs = append(dirs, d)
		}
		b.StartTimer()
		applyParallel(b, blobs, dirs)
	}
}

// applyParallel unpacks blobs[j] into dirs[j], one goroutine per layer, as
// a pull does.
func applyParallel(b *testing.B, blobs [][]byte, dirs []string) {
	var wg sync.WaitGroup
	errs := make([]error, len(blobs))
	for j := range blobs {
		wg.Add(1)
		go func(j int) {
			defer wg.Done()
			rc, err := Decompress(bytes.NewReader(blobs[j]))
			if err == nil {
				_, err = Apply(context.Background(), dirs[j], rc, ApplyOptions{Whiteout: Overlay})
				rc.Close()
			}
			errs[j] = err
		}(j)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkApplyDebianFresh is BenchmarkApplyDebian into new directories
// each round, none deleted before the end: on ext4 without a journal (this
// machine's root) every inode deleted in the last 60-360 s is skipped, one
// buffer lookup each, by every later inode allocation in its group, which
// makes unpacking right after a delete cost up to twice the CPU. Reports
// CPU ms (this process and igzip) per round.
func BenchmarkApplyDebianFresh(b *testing.B) {
	blobs := testutil.DebianLayers(b)
	base := benchDir(b)
	cpu0 := cpuTime()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dirs := make([]string, len(blobs))
		for j := range blobs {
			dirs[j] = filepath.Join(base, strconv.Itoa(i)+"-"+strconv.Itoa(j))
			os.Mkdir(dirs[j], 0o755)
		}
		applyParallel(b, blobs, dirs)
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N)/1e6, "cpu-ms")
}

// cpuTime is user+system time of this process and its waited-for children
// (igzip), in nanoseconds: steadier than wall time on a shared machine.
func cpuTime() int64 {
	var self, kids unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &self)
	unix.Getrusage(unix.RUSAGE_CHILDREN, &kids)
	return self.Utime.Nano() + self.Stime.Nano() + kids.Utime.Nano() + kids.Stime.Nano()
}
