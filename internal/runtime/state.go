package runtime

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// State directory, one per container:
//
//	<Root>/<id>/
//	    config.json  the bundle's config.json as given to create
//	    state.json   containerState below; written before the init is spawned
//	                 (so delete --force can clean up a half-made container),
//	                 rewritten once the init is ready
//	    exec.fifo    the created init blocks opening it for writing; start
//	                 opens it for reading, reads one byte and removes it
//	    lock         flock(2) held by every command that changes the container
const (
	configFile = "config.json"
	stateFile  = "state.json"
	fifoName   = "exec.fifo"
	lockName   = "lock"
)

type containerState struct {
	ID          string            `json:"id"`
	Pid         int               `json:"pid"`
	StartTime   uint64            `json:"startTime"` // /proc/pid/stat field 22, guards against pid reuse
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Created     time.Time         `json:"created"`
	CgroupPath  string            `json:"cgroupPath"`
	CgroupPaths map[string]string `json:"cgroupPaths,omitempty"` // as created, per controller
	Annotations map[string]string `json:"annotations,omitempty"`
	Owner       string            `json:"owner"`
	// The spec is kept as config.json next to state.json, byte for byte:
	// encoding it with reflection on every command costs more than the
	// rest of state.json. Load it with Runtime.config.
	Config *specs.Spec `json:"-"`
	// hook kinds that run after create, so start/delete need not parse
	// config.json otherwise
	HasPoststart bool `json:"hasPoststart,omitempty"`
	HasPoststop  bool `json:"hasPoststop,omitempty"`
	// Containers that share the init's pid namespace with the host cannot be
	// killed as a whole by killing the init.
	HostPidNS bool `json:"hostPidNS,omitempty"`
}

// idOK is the character set runc accepts (no regexp: it costs startup).
func idOK(id string) bool {
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '+' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

func validateID(id string) error {
	if id == "" || id == "." || id == ".." || !idOK(id) {
		return fmt.Errorf("invalid container id %q: use letters, digits and _ + - . only: %w", id, errdefs.ErrInvalidArgument)
	}
	if len(id) > 1024 {
		return fmt.Errorf("container id too long: %w", errdefs.ErrInvalidArgument)
	}
	return nil
}

func (r *Runtime) dir(id string) string { return filepath.Join(r.root(), id) }

func (r *Runtime) readState(id string) (*containerState, error) {
	if err := validateID(id); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(r.dir(id), stateFile))
	if err != nil {
		if os.IsNotExist(err) {
			if _, serr := os.Stat(r.dir(id)); serr == nil {
				// a create that crashed before writing anything
				return &containerState{ID: id}, nil
			}
			return nil, fmt.Errorf("container %s does not exist: %w", id, errdefs.ErrNotFound)
		}
		return nil, err
	}
	var st containerState
	if err := unmarshalState(b, &st); err != nil {
		return nil, fmt.Errorf("container %s: corrupt state: %w", id, err)
	}
	return &st, nil
}

func (r *Runtime) writeState(st *containerState) error {
	b := st.marshal()
	tmp := filepath.Join(r.dir(st.ID), stateFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(r.dir(st.ID), stateFile))
}

// lock takes the container's flock; the returned func releases it.
func (r *Runtime) lock(id string) (func(), error) {
	fd, err := unix.Open(filepath.Join(r.dir(id), lockName), unix.O_CREAT|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, fmt.Errorf("container %s does not exist: %w", id, errdefs.ErrNotFound)
		}
		return nil, err
	}
	if err := unix.Flock(fd, unix.LOCK_EX); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return func() { unix.Close(fd) }, nil
}

// procStartTime reads field 22 of /proc/pid/stat; 0 if the process is gone.
func procStartTime(pid int) uint64 {
	// one read into a stack buffer: every command calls this, and
	// os.ReadFile's stat and growing buffer cost more than the parse
	fd, err := unix.Open("/proc/"+strconv.Itoa(pid)+"/stat", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0
	}
	var buf [2048]byte // 52 fields of at most 20 digits and a 16-byte comm fit
	n, err := unix.Read(fd, buf[:])
	unix.Close(fd)
	if err != nil || n <= 0 || n == len(buf) {
		return 0
	}
	b := buf[:n]
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := bytes.Fields(b[i+1:])
	// fields after ")" start at field 3 (state); starttime is field 22
	if len(f) < 20 {
		return 0
	}
	if string(f[0]) == "Z" || string(f[0]) == "X" {
		return 0
	}
	v, _ := strconv.ParseUint(string(f[19]), 10, 64)
	return v
}

// alive reports whether the container's init is still the process we started.
func (st *containerState) alive() bool {
	return st.Pid > 0 && procStartTime(st.Pid) == st.StartTime
}

// config returns the container's spec (parsed from its saved config.json).
func (r *Runtime) config(st *containerState) (*specs.Spec, error) {
	if st.Config != nil {
		return st.Config, nil
	}
	b, err := os.ReadFile(filepath.Join(r.dir(st.ID), configFile))
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", st.ID, err)
	}
	if s, ok := fastSpec(b); ok {
		st.Config = s
		return s, nil
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("container %s: saved config: %w", st.ID, err)
	}
	st.Config = &s
	return &s, nil
}
