package network

import (
	"encoding/json"
	"fmt"

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
			n := &netState{eps: map[string]*EndpointInfo{}}
			if err := json.Unmarshal(nb.Get(keyConfig), &n.cfg); err != nil {
				return fmt.Errorf("network %s: %w", k, err)
			}
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
