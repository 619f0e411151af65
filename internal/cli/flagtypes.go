package cli

import (
	"bufio"
	"fmt"
	"math/big"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/blkiodev"
	"github.com/moby/moby/api/types/container"
)

// Flag value types with docker's names in help ("list", "bytes", "map", …)
// and docker's semantics: list flags never split on commas (unlike pflag's
// StringSlice), so `-e A=1,2` stays one variable.

type listOpt struct {
	values   []string
	validate func(string) (string, error)
	typ      string // shown in help; "list" by default
}

// String is empty for an empty list so help shows no "(default [])", as docker's.
func (l *listOpt) String() string {
	if len(l.values) == 0 {
		return ""
	}
	return "[" + strings.Join(l.values, " ") + "]"
}

func (l *listOpt) Set(v string) error {
	if l.validate != nil {
		var err error
		if v, err = l.validate(v); err != nil {
			return err
		}
	}
	l.values = append(l.values, v)
	return nil
}

func (l *listOpt) Type() string {
	if l.typ != "" {
		return l.typ
	}
	return "list"
}

func (l *listOpt) Len() int { return len(l.values) }

// mapOpt is docker's "map" flag: repeated key=value pairs.
type mapOpt struct {
	values   map[string]string
	validate func(string) (string, error)
}

func (m *mapOpt) String() string {
	if len(m.values) == 0 {
		return "map[]"
	}
	keys := make([]string, 0, len(m.values))
	for k := range m.values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ":" + m.values[k]
	}
	return "map[" + strings.Join(parts, " ") + "]"
}

func (m *mapOpt) Set(v string) error {
	if m.validate != nil {
		var err error
		if v, err = m.validate(v); err != nil {
			return err
		}
	}
	if m.values == nil {
		m.values = map[string]string{}
	}
	k, val, _ := strings.Cut(v, "=")
	m.values[k] = val
	return nil
}

func (m *mapOpt) Type() string { return "map" }

// memBytes accepts docker's RAM units ("512m", "1g").
type memBytes int64

func (m *memBytes) String() string {
	if *m == 0 {
		return "0"
	}
	return units.BytesSize(float64(*m))
}

func (m *memBytes) Set(v string) error {
	n, err := units.RAMInBytes(v)
	*m = memBytes(n)
	return err
}

func (m *memBytes) Type() string { return "bytes" }

// memSwapBytes is memBytes that also accepts -1 (unlimited swap).
type memSwapBytes int64

func (m *memSwapBytes) String() string { return strconv.FormatInt(int64(*m), 10) }

func (m *memSwapBytes) Set(v string) error {
	if v == "-1" {
		*m = -1
		return nil
	}
	n, err := units.RAMInBytes(v)
	*m = memSwapBytes(n)
	return err
}

func (m *memSwapBytes) Type() string { return "bytes" }

// nanoCPUs parses --cpus as an exact decimal (0.5 → 500000000).
type nanoCPUs int64

func (n *nanoCPUs) String() string {
	if *n == 0 {
		return ""
	}
	return big.NewRat(int64(*n), 1e9).FloatString(3)
}

func (n *nanoCPUs) Set(v string) error {
	r, ok := new(big.Rat).SetString(v)
	if !ok {
		return fmt.Errorf("failed to parse %v as a rational number", v)
	}
	nano := r.Mul(r, big.NewRat(1e9, 1))
	if !nano.IsInt() {
		return fmt.Errorf("value is too precise")
	}
	*n = nanoCPUs(nano.Num().Int64())
	return nil
}

func (n *nanoCPUs) Type() string { return "decimal" }

// ulimitOpt is --ulimit name=soft[:hard].
type ulimitOpt struct{ values []*container.Ulimit }

func (u *ulimitOpt) String() string {
	parts := make([]string, len(u.values))
	for i, v := range u.values {
		parts[i] = v.String()
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func (u *ulimitOpt) Set(v string) error {
	l, err := units.ParseUlimit(v)
	if err != nil {
		return err
	}
	for i, old := range u.values {
		if old.Name == l.Name {
			u.values[i] = l
			return nil
		}
	}
	u.values = append(u.values, l)
	return nil
}

func (u *ulimitOpt) Type() string { return "ulimit" }

// throttleOpt is --device-{read,write}-{bps,iops} path:rate.
type throttleOpt struct {
	values []*blkiodev.ThrottleDevice
	bytes  bool
}

func (t *throttleOpt) String() string {
	parts := make([]string, len(t.values))
	for i, v := range t.values {
		parts[i] = fmt.Sprintf("%s:%d", v.Path, v.Rate)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func (t *throttleOpt) Set(v string) error {
	path, rate, ok := strings.Cut(v, ":")
	if !ok || !strings.HasPrefix(path, "/dev/") {
		return fmt.Errorf("bad format: %s", v)
	}
	var n uint64
	if t.bytes {
		b, err := units.RAMInBytes(rate)
		if err != nil || b < 0 {
			return fmt.Errorf("invalid rate for device: %s. The correct format is <device-path>:<number>[<unit>]. Number must be a positive integer. Unit is optional and can be kb, mb, or gb", v)
		}
		n = uint64(b)
	} else {
		i, err := strconv.ParseUint(rate, 10, 64)
		if err != nil {
			return fmt.Errorf("invalid rate for device: %s. The correct format is <device-path>:<number>. Number must be a positive integer", v)
		}
		n = i
	}
	t.values = append(t.values, &blkiodev.ThrottleDevice{Path: path, Rate: n})
	return nil
}

func (t *throttleOpt) Type() string { return "list" }

// weightDeviceOpt is --blkio-weight-device path:weight.
type weightDeviceOpt struct{ values []*blkiodev.WeightDevice }

func (w *weightDeviceOpt) String() string { return fmt.Sprint(len(w.values)) }

func (w *weightDeviceOpt) Set(v string) error {
	path, weight, ok := strings.Cut(v, ":")
	if !ok || !strings.HasPrefix(path, "/dev/") {
		return fmt.Errorf("bad format: %s", v)
	}
	n, err := strconv.ParseUint(weight, 10, 16)
	if err != nil || (n > 0 && (n < 10 || n > 1000)) {
		return fmt.Errorf("invalid weight for device: %s", v)
	}
	w.values = append(w.values, &blkiodev.WeightDevice{Path: path, Weight: uint16(n)})
	return nil
}

func (w *weightDeviceOpt) Type() string { return "list" }

// Validators shared by several commands.

// validateEnv expands a bare "NAME" from the client's environment, as docker does.
func validateEnv(v string) (string, error) {
	k, _, hasValue := strings.Cut(v, "=")
	if k == "" {
		return "", fmt.Errorf("invalid environment variable: %s", v)
	}
	if hasValue {
		return v, nil
	}
	if val, ok := os.LookupEnv(v); ok {
		return v + "=" + val, nil
	}
	return v, nil
}

func validateLabel(v string) (string, error) {
	if k, _, _ := strings.Cut(v, "="); strings.TrimSpace(k) == "" {
		return "", fmt.Errorf("invalid label '%s': empty name", v)
	}
	return v, nil
}

func validateIP(v string) (string, error) {
	if _, err := netip.ParseAddr(strings.TrimSpace(v)); err != nil {
		return "", fmt.Errorf("IP address is not correctly formatted: %s", v)
	}
	return strings.TrimSpace(v), nil
}

func validateExtraHost(v string) (string, error) {
	name, ip, ok := strings.Cut(v, "=")
	if !ok {
		// host:ip, where ip may itself be IPv6 with colons: split at the first colon.
		name, ip, ok = strings.Cut(v, ":")
	}
	if !ok || name == "" {
		return "", fmt.Errorf("bad format for add-host: %q", v)
	}
	ip = strings.TrimSuffix(strings.TrimPrefix(ip, "["), "]")
	if ip != "host-gateway" {
		if _, err := netip.ParseAddr(ip); err != nil {
			return "", fmt.Errorf("invalid IP address in add-host: %q", ip)
		}
	}
	return name + ":" + ip, nil
}

func validateAttach(v string) (string, error) {
	s := strings.ToLower(v)
	switch s {
	case "stdin", "stdout", "stderr":
		return s, nil
	}
	return "", fmt.Errorf("valid streams are STDIN, STDOUT and STDERR")
}

func validateSysctl(v string) (string, error) {
	if k, _, ok := strings.Cut(v, "="); !ok || k == "" {
		return "", fmt.Errorf("sysctl '%s' is not allowed", v)
	}
	return v, nil
}

// readKVFile reads an --env-file or --label-file: one entry per line,
// blank lines and #comments skipped, bare names taken from the environment
// (env files only).
func readKVFile(path string, fromEnv bool) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if line == 1 {
			text = strings.TrimPrefix(text, "\uFEFF")
		}
		if !utf8.ValidString(text) {
			return nil, fmt.Errorf("env file %s contains invalid utf8 bytes at line %d", path, line)
		}
		text = strings.TrimLeftFunc(text, unicode.IsSpace)
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		k, _, hasValue := strings.Cut(text, "=")
		if k == "" {
			return nil, fmt.Errorf("no variable name on line '%s'", text)
		}
		if strings.ContainsAny(k, " \t") {
			return nil, fmt.Errorf("variable '%s' contains whitespaces", k)
		}
		if !hasValue && fromEnv {
			if v, ok := os.LookupEnv(k); ok {
				text = k + "=" + v
			} else {
				continue
			}
		}
		out = append(out, text)
	}
	return out, sc.Err()
}

func readKVFiles(files, direct []string, fromEnv bool) ([]string, error) {
	var out []string
	for _, f := range files {
		kv, err := readKVFile(f, fromEnv)
		if err != nil {
			return nil, err
		}
		out = append(out, kv...)
	}
	return append(out, direct...), nil
}

func kvToMap(kvs []string) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}
