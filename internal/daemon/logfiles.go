package daemon

// Log drivers and their files.
//
// json-file and local both write docker's json-file lines, one JSON object
// per line ({"log":"text\n","stream":"stdout|stderr","time":"RFC 3339
// nano"}), in <container dir>/<id>-json.log, written by the container's
// monitor (internal/monitor/cmonitor/monitor.c), which also rotates:
//
//	FILE          current
//	FILE.1        newest rotated (FILE.1.gz with compress=true)
//	…
//	FILE.N-1      oldest kept (N = max-file)
//
// local differs from json-file only in its options, as dockerd's: the
// defaults max-size=20m, max-file=5, compress=true, and only those three
// keys (plus the generic mode and max-buffer-size). dockerd's local driver
// frames entries as protobuf in local-logs/container.log instead; that
// format is private to dockerd (its inspect shows no LogPath for local), so
// berth keeps one reader for both and shows no LogPath for local either.
// none writes nothing and cannot be read.

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

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
)

// logSettings are a container's resolved log driver options.
type logSettings struct {
	Driver   string
	MaxSize  int64
	MaxFiles int
	Compress bool // gzip rotated files (the monitor does, see monitor.c)
}

// mergeLogConfig is dockerd's mergeAndVerifyLogConfig, run at create: an
// unset driver is the daemon's, and a container of the daemon's driver
// gets the daemon's log-opts it does not set itself (inspect shows them);
// then the options are checked as the driver will read them.
func (d *Daemon) mergeLogConfig(lc *container.LogConfig) error {
	if lc.Type == "" {
		lc.Type = d.cfg.LogDriver
	}
	if lc.Config == nil {
		lc.Config = map[string]string{}
	}
	if lc.Type == d.cfg.LogDriver {
		for k, v := range d.cfg.LogOpts {
			if _, set := lc.Config[k]; !set {
				lc.Config[k] = v
			}
		}
	}
	_, err := resolveLog(lc.Type, lc.Config, &d.cfg)
	return err
}

// resolveLog validates a container's log config as docker does and gives
// the settings the monitor runs with. An empty driver (records made before
// mergeLogConfig) is the daemon's, with its options.
func resolveLog(driver string, opts map[string]string, d *Config) (logSettings, error) {
	ls := logSettings{Driver: driver, MaxFiles: 1}
	if ls.Driver == "" {
		ls.Driver = d.LogDriver
		if len(opts) == 0 {
			opts = d.LogOpts
		}
	}
	switch ls.Driver {
	case "none":
		return ls, nil // dockerd checks no options for none
	case "json-file":
	case "local":
		ls.MaxSize, ls.MaxFiles, ls.Compress = 20*1024*1024, 5, true
	default:
		return ls, errMsg(errInvalid, "logger: no log driver named '%s' is registered", ls.Driver)
	}
	switch opts["mode"] {
	case "", "blocking", "non-blocking":
	default:
		return ls, errMsg(errInvalid, "logger: logging mode not supported: %s", opts["mode"])
	}
	if v, ok := opts["max-buffer-size"]; ok {
		if opts["mode"] != "non-blocking" {
			return ls, errMsg(errInvalid, "logger: max-buffer-size option is only supported with 'mode=non-blocking'")
		}
		if _, err := units.RAMInBytes(v); err != nil {
			return ls, errMsg(errInvalid, "logger: could not parse value of max-buffer-size: %v", err)
		}
	}
	for k, v := range opts {
		switch k {
		case "max-size":
			n, err := units.RAMInBytes(v)
			// local takes 0 (no rotation), as dockerd's does
			if err != nil || n < 0 || (n == 0 && ls.Driver != "local") {
				return ls, errMsg(errInvalid, "invalid value for log-opt max-size %q", v)
			}
			ls.MaxSize = n
		case "max-file":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || (n == 0 && ls.Driver != "local") {
				return ls, errMsg(errInvalid, "invalid value for max-file: %s", v)
			}
			ls.MaxFiles = max(n, 1) // local's 0 keeps one file
		case "compress":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return ls, errMsg(errInvalid, "invalid value for compress: %s", v)
			}
			ls.Compress = b
		case "mode", "max-buffer-size":
		case "labels", "labels-regex", "env", "env-regex", "tag":
			if ls.Driver == "local" {
				return ls, unknownLogOpt(ls.Driver, k)
			}
		default:
			return ls, unknownLogOpt(ls.Driver, k)
		}
	}
	if ls.Driver == "local" {
		// dockerd's local driver: compression applies to rotated files,
		// so it needs more than one, even when compress is its default.
		if ls.Compress && ls.MaxFiles < 2 {
			return ls, errMsg(errInvalid, "compression cannot be enabled when max file count is 1")
		}
		if ls.MaxSize == 0 {
			ls.Compress, ls.MaxFiles = false, 1 // no rotation, nothing to compress
		}
		return ls, nil
	}
	if ls.MaxFiles > 1 && ls.MaxSize == 0 {
		return ls, errMsg(errInvalid, "max-file cannot be set without max-size")
	}
	if ls.Compress && (ls.MaxFiles < 2 || ls.MaxSize == 0) {
		return ls, errMsg(errInvalid, "compress cannot be true when max-file is less than 2 or max-size is not set")
	}
	return ls, nil
}

// unknownLogOpt is dockerd's message, which each driver words its own way.
func unknownLogOpt(driver, key string) error {
	if driver == "local" {
		return errMsg(errInvalid, "unknown log opt '%s' for log driver %s", key, driver)
	}
	return errMsg(errInvalid, "unknown log opt '%s' for %s log driver", key, driver)
}

// inspectLogPath is LogPath as docker's inspect shows it: the json-file
// path, nothing for local (its files are the daemon's business) or none.
func inspectLogPath(c *Container) string {
	if c.HostConfig != nil && c.HostConfig.LogConfig.Type == "local" {
		return ""
	}
	return c.LogPath
}

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
