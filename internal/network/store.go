package network

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"

	bolt "go.etcd.io/bbolt"
)

// The manager owns the top-level bucket "networks" of the daemon's bbolt
// file. Everything else it knows is rebuilt from it at start (bridges,
// nftables tables, port reservations, DNS servers).
//
//	networks
//	├── version                    "1"
//	└── <network id>               one bucket per network
//	    ├── config                 Network (JSON)
//	    ├── next4, next6           last address handed out (allocation resumes after it)
//	    ├── ips
//	    │   └── <address>          container id owning it (gateways are implicit, never stored)
//	    └── endpoints
//	        └── <container id>     EndpointInfo (JSON): ifname, veth, MAC, addresses, published ports, aliases, links, DNS
var (
	bucketNetworks  = []byte("networks")
	bucketEndpoints = []byte("endpoints")
	keyConfig       = []byte("config")
)

func netBucket(tx *bolt.Tx, id string) (*bolt.Bucket, error) {
	root := tx.Bucket(bucketNetworks)
	if root == nil {
		return nil, fmt.Errorf("bucket %s missing", bucketNetworks)
	}
	b := root.Bucket([]byte(id))
	if b == nil {
		return nil, fmt.Errorf("network %s missing from the store", id)
	}
	return b, nil
}

func putJSON(b *bolt.Bucket, k []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(k, data)
}

// loadAll reads every network with its endpoints.
func loadAll(db *bolt.DB) (map[string]*netState, error) {
	out := map[string]*netState{}
	err := db.Update(func(tx *bolt.Tx) error {
		root, err := tx.CreateBucketIfNotExists(bucketNetworks)
		if err != nil {
			return err
		}
		if root.Get([]byte("version")) == nil {
			if err := root.Put([]byte("version"), []byte("1")); err != nil {
				return err
			}
		}
		return root.ForEachBucket(func(k []byte) error {
			nb := root.Bucket(k)
			n := &netState{eps: map[string]*EndpointInfo{}, pool: newPool()}
			if err := json.Unmarshal(nb.Get(keyConfig), &n.cfg); err != nil {
				return fmt.Errorf("network %s: %w", k, err)
			}
			if ips := nb.Bucket([]byte("ips")); ips != nil {
				if err := ips.ForEach(func(a, owner []byte) error {
					if addr, err := netip.ParseAddr(string(a)); err == nil {
						n.pool.taken[addr] = string(owner)
					}
					return nil
				}); err != nil {
					return err
				}
			}
			n.pool.next4, _ = netip.ParseAddr(string(nb.Get([]byte("next4"))))
			n.pool.next6, _ = netip.ParseAddr(string(nb.Get([]byte("next6"))))
			if eb := nb.Bucket(bucketEndpoints); eb != nil {
				if err := eb.ForEach(func(ck, v []byte) error {
					var ep EndpointInfo
					if err := json.Unmarshal(v, &ep); err != nil {
						return fmt.Errorf("endpoint %s: %w", ck, err)
					}
					n.eps[string(ck)] = &ep
					return nil
				}); err != nil {
					return err
				}
			}
			out[n.cfg.ID] = n
			return nil
		})
	})
	return out, err
}

// The writer applies store changes in the order they were issued, several
// per bbolt transaction when they queue up (group commit: one fsync for a
// burst of container starts). Connect and Release do not wait for it: the
// manager's memory is the authority while it runs, so no address is handed
// out twice, and if the daemon dies before a change is durable, the next
// New finds a consistent older state: an endpoint it does not know has its
// veth deleted as stale (the container keeps its address but is cut off,
// so no duplicate is ever on the wire), an endpoint whose namespace is gone
// is dropped.
type writer struct {
	db  *bolt.DB
	log *slog.Logger
	ops chan storeOp
	end chan struct{}
}

type storeOp struct {
	fn   func(*bolt.Tx) error
	done chan error // nil: fire and forget
}

func newWriter(db *bolt.DB, log *slog.Logger) *writer {
	w := &writer{db: db, log: log, ops: make(chan storeOp, 1024), end: make(chan struct{})}
	go w.run()
	return w
}

func (w *writer) run() {
	defer close(w.end)
	for op := range w.ops {
		batch := []storeOp{op}
	more:
		for len(batch) < 256 {
			select {
			case o, ok := <-w.ops:
				if !ok {
					break more
				}
				batch = append(batch, o)
			default:
				break more
			}
		}
		err := w.db.Update(func(tx *bolt.Tx) error {
			for _, o := range batch {
				if err := o.fn(tx); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil && len(batch) > 1 {
			// one op failed: apply them one by one so the others land
			for _, o := range batch {
				e := w.db.Update(o.fn)
				w.finish(o, e)
			}
			continue
		}
		for _, o := range batch {
			w.finish(o, err)
		}
	}
}

func (w *writer) finish(o storeOp, err error) {
	if o.done != nil {
		o.done <- err
	} else if err != nil {
		w.log.Warn("network: store update failed; repaired at next start", "err", err)
	}
}

// async queues fn; sync queues fn and waits for its commit.
func (w *writer) async(fn func(*bolt.Tx) error) { w.ops <- storeOp{fn: fn} }

func (w *writer) sync(fn func(*bolt.Tx) error) error {
	done := make(chan error, 1)
	w.ops <- storeOp{fn: fn, done: done}
	return <-done
}

// close drains the queue and stops the writer.
func (w *writer) close() {
	close(w.ops)
	<-w.end
}
