package daemon

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"go.etcd.io/bbolt"
)

// Container is one container's record. The persisted part is JSON in the
// "containers" bucket; the rest lives only while the daemon runs.
//
// Bucket schema (owned by this file):
//
//	containers/            (top-level bucket)
//	└── <64-hex id>  →  JSON of record
type Container struct {
	mu sync.Mutex
	record

	// Runtime-only state.
	monitorPid   int
	exitCh       chan struct{}        // closed when the current run ends
	removedCh    chan struct{}        // closed when the container is removed
	attachWait   []chan attachTarget  // attaches made before start
	execs        map[string]*execProc // by exec ID
	stopping     bool                 // an explicit stop/kill: no restart
	restartTimer *time.Timer
	health       *healthChecker // the running healthcheck (health.go)
}

type record struct {
	ID             string
	Name           string // with the leading "/"
	Created        time.Time
	Path           string
	Args           []string
	Config         *container.Config
	HostConfig     *container.HostConfig
	Image          string // image ID (sha256:…)
	ImageName      string // as the user gave it
	State          State
	RestartCount   int
	LogPath        string
	Runtime        string
	HasBeenStarted bool
	// ManualStop is true after docker stop; unless-stopped then stays down
	// across daemon restarts.
	ManualStop bool
}

// State is the persisted state machine: created → running ⇄ paused;
// running → exited (by itself, stop, kill) → running (start, restart);
// restarting between a policy restart's exit and start; removing; dead
// when removal failed.
type State struct {
	Status     container.ContainerState
	Pid        int
	ExitCode   int
	OOMKilled  bool
	Error      string
	StartedAt  time.Time
	FinishedAt time.Time
	Health     *container.Health `json:",omitempty"` // healthcheck status and log (health.go)
}

func (s State) running() bool {
	return s.Status == container.StateRunning || s.Status == container.StatePaused
}

func newID() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b[:])
}

var bucketContainers = []byte("containers")

func (d *Daemon) saveRecord(c *Container) error {
	b, err := json.Marshal(&c.record)
	if err != nil {
		return err
	}
	return d.db.Update(func(tx *bbolt.Tx) error {
		bk, err := tx.CreateBucketIfNotExists(bucketContainers)
		if err != nil {
			return err
		}
		return bk.Put([]byte(c.ID), b)
	})
}

func (d *Daemon) deleteRecord(id string) error {
	return d.db.Update(func(tx *bbolt.Tx) error {
		bk := tx.Bucket(bucketContainers)
		if bk == nil {
			return nil
		}
		return bk.Delete([]byte(id))
	})
}

func (d *Daemon) loadRecords() ([]*Container, error) {
	var out []*Container
	err := d.db.View(func(tx *bbolt.Tx) error {
		bk := tx.Bucket(bucketContainers)
		if bk == nil {
			return nil
		}
		return bk.ForEach(func(k, v []byte) error {
			c := &Container{}
			if err := json.Unmarshal(v, &c.record); err != nil {
				return fmt.Errorf("container record %s: %w", k, err)
			}
			out = append(out, c)
			return nil
		})
	})
	return out, err
}

// containers is the in-memory index: by ID and by name.
type containers struct {
	mu     sync.RWMutex
	byID   map[string]*Container
	byName map[string]string // "/name" → id
}

func (cs *containers) add(c *Container) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.byID[c.ID] = c
	cs.byName[c.Name] = c.ID
}

// reserveName claims name for id; a taken name is docker's conflict.
func (cs *containers) reserveName(name, id string) error {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if other, ok := cs.byName[name]; ok && other != id {
		return errMsg(errdefs.ErrConflict, "Conflict. The container name %q is already in use by container %q. You have to remove (or rename) that container to be able to reuse that name.", name, other)
	}
	cs.byName[name] = id
	return nil
}

func (cs *containers) releaseName(name, id string) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.byName[name] == id {
		delete(cs.byName, name)
	}
}

func (cs *containers) remove(c *Container) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	delete(cs.byID, c.ID)
	if cs.byName[c.Name] == c.ID {
		delete(cs.byName, c.Name)
	}
}

func (cs *containers) list() []*Container {
	cs.mu.RLock()
	defer cs.mu.RUnlock()
	out := make([]*Container, 0, len(cs.byID))
	for _, c := range cs.byID {
		out = append(out, c)
	}
	return out
}

// get resolves what a client typed: a full ID, a name (with or without
// "/"), or a unique ID prefix, in docker's order.
func (cs *containers) get(ref string) (*Container, error) {
	cs.mu.RLock()
	defer cs.mu.RUnlock()
	if ref == "" {
		return nil, errNoSuchContainer(ref)
	}
	if c, ok := cs.byID[ref]; ok {
		return c, nil
	}
	name := ref
	if !strings.HasPrefix(name, "/") {
		name = "/" + name
	}
	if id, ok := cs.byName[name]; ok {
		return cs.byID[id], nil
	}
	var found *Container
	for id, c := range cs.byID {
		if strings.HasPrefix(id, ref) {
			if found != nil {
				return nil, errMsg(errdefs.ErrInvalidArgument, "multiple IDs found with provided prefix: %s", ref)
			}
			found = c
		}
	}
	if found == nil {
		return nil, errNoSuchContainer(ref)
	}
	return found, nil
}

func errNoSuchContainer(ref string) error {
	return errMsg(errdefs.ErrNotFound, "No such container: %s", ref)
}

// errMsg classifies an error for the API with exactly docker's message
// (fmt's %w would append the class name to what the client prints).
func errMsg(class interface{ WithMessage(string) error }, format string, args ...any) error {
	return class.WithMessage(fmt.Sprintf(format, args...))
}
