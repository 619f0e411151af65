package daemon

// Reading json-file logs with rotation: FILE (current), FILE.1 … FILE.N-1,
// each rotated one plain or, with compress=true, gzipped (FILE.i.gz) by the
// container's monitor (see internal/monitor/cmonitor/monitor.c).

import (
	"compress/gzip"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// logFiles lists a container's log files, oldest first: the rotated ones
// by number (plain when both forms exist: the monitor unlinks the plain one
// just after its .gz is complete), then FILE.
func logFiles(path string) []string {
	dir, base := filepath.Split(path)
	entries, _ := os.ReadDir(dir)
	type rotated struct {
		n    int
		name string
	}
	byN := map[int]string{}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), base+".")
		if !ok {
			continue
		}
		num, gz := strings.CutSuffix(rest, ".gz")
		n, err := strconv.Atoi(num)
		if err != nil || n < 1 {
			continue // FILE.i.gz.tmp: a compression in progress
		}
		if _, seen := byN[n]; seen && gz {
			continue
		}
		byN[n] = e.Name()
	}
	rs := make([]rotated, 0, len(byN))
	for n, name := range byN {
		rs = append(rs, rotated{n, name})
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].n > rs[j].n })
	files := make([]string, 0, len(rs)+1)
	for _, r := range rs {
		files = append(files, filepath.Join(dir, r.name))
	}
	return append(files, path)
}

// openLogFile opens one log file; a plain rotated file compressed since it
// was listed is read from its .gz.
func openLogFile(p string) (*os.File, error) {
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) && !strings.HasSuffix(p, ".gz") {
		if gf, gerr := os.Open(p + ".gz"); gerr == nil {
			return gf, nil
		}
	}
	return f, err
}

// logReader reads f, decompressing a .gz file.
func logReader(f *os.File) io.Reader {
	if !strings.HasSuffix(f.Name(), ".gz") {
		return f
	}
	zr, err := gzip.NewReader(f)
	if err != nil {
		return errReader{err}
	}
	return zr
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }
