package image

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"go.etcd.io/bbolt"
)

// Index schema in the daemon's bbolt file (values are JSON):
//
//	images/                              top-level bucket owned by this package
//	├── v → "1"                          schema version
//	├── names/                           every name an image is known by
//	│   └── <normalized ref> → nameRecord    "docker.io/library/busybox:latest"
//	│                                        "docker.io/library/busybox@sha256:<index or manifest>"
//	├── ids/                             one entry per image (image ID = config digest)
//	│   └── <sha256:config> → imageRecord   manifest, layers, diff IDs, chain IDs, size, times
//	└── layers/                          unpacked layers (snapshots) and who holds them
//	    └── <chainID>/
//	        ├── info → layerRecord          diff ID, parent chain ID, unpacked size
//	        └── refs/<imageID> → ""         images whose chain includes this layer
//
// A layer's snapshot is removed when its refs bucket becomes empty; blobs
// are collected when no image record or name names them (GC). Transactions
// are short and never span network or disk I/O outside bbolt.
var (
	bktImages = []byte("images")
	bktNames  = []byte("names")
	bktIDs    = []byte("ids")
	bktLayers = []byte("layers")
	bktRefs   = []byte("refs")
	keyInfo   = []byte("info")
	keyVer    = []byte("v")
)

type nameRecord struct {
	ImageID digest.Digest `json:"id"`
	// Target is what the name resolved to at the registry: an index or a
	// manifest. Its digest is the repo digest docker shows.
	Target  ocispec.Descriptor `json:"target"`
	Updated time.Time          `json:"updated"`
}

type imageRecord struct {
	ID       digest.Digest        `json:"id"`
	Manifest ocispec.Descriptor   `json:"manifest"`
	Config   ocispec.Descriptor   `json:"config"`
	Layers   []ocispec.Descriptor `json:"layers"`
	DiffIDs  []digest.Digest      `json:"diffIDs"`
	ChainIDs []digest.Digest      `json:"chainIDs"`
	Size     int64                `json:"size"`
	// Created comes from the image config; Stored is when it entered this store.
	Created time.Time `json:"created"`
	Stored  time.Time `json:"stored"`
}

type layerRecord struct {
	DiffID digest.Digest `json:"diffID"`
	Parent digest.Digest `json:"parent,omitempty"`
	Size   int64         `json:"size"`
}

func initBuckets(tx *bbolt.Tx) error {
	root, err := tx.CreateBucketIfNotExists(bktImages)
	if err != nil {
		return err
	}
	if err := root.Put(keyVer, []byte("1")); err != nil {
		return err
	}
	for _, b := range [][]byte{bktNames, bktIDs, bktLayers} {
		if _, err := root.CreateBucketIfNotExists(b); err != nil {
			return err
		}
	}
	return nil
}

func bucket(tx *bbolt.Tx, name []byte) *bbolt.Bucket { return tx.Bucket(bktImages).Bucket(name) }

func getJSON(b *bbolt.Bucket, key []byte, v any) (bool, error) {
	raw := b.Get(key)
	if raw == nil {
		return false, nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return true, fmt.Errorf("corrupt record %q: %w", key, err)
	}
	return true, nil
}

func putJSON(b *bbolt.Bucket, key []byte, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(key, raw)
}

func getImage(tx *bbolt.Tx, id digest.Digest) (*imageRecord, error) {
	var rec imageRecord
	ok, err := getJSON(bucket(tx, bktIDs), []byte(id), &rec)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("image %s: %w", id, errdefs.ErrNotFound)
	}
	return &rec, nil
}

// namesOf returns the stored names pointing at image id.
func namesOf(tx *bbolt.Tx, id digest.Digest) ([]string, error) {
	var out []string
	err := bucket(tx, bktNames).ForEach(func(k, v []byte) error {
		var nr nameRecord
		if err := json.Unmarshal(v, &nr); err != nil {
			return nil
		}
		if nr.ImageID == id {
			out = append(out, string(k))
		}
		return nil
	})
	return out, err
}

// putImage records an image and takes references on its layers.
func putImage(tx *bbolt.Tx, rec *imageRecord, layers []layerRecord) error {
	if err := putJSON(bucket(tx, bktIDs), []byte(rec.ID), rec); err != nil {
		return err
	}
	lb := bucket(tx, bktLayers)
	for i, chain := range rec.ChainIDs {
		cb, err := lb.CreateBucketIfNotExists([]byte(chain))
		if err != nil {
			return err
		}
		if cb.Get(keyInfo) == nil || layers[i].Size > 0 {
			if err := putJSON(cb, keyInfo, layers[i]); err != nil {
				return err
			}
		}
		rb, err := cb.CreateBucketIfNotExists(bktRefs)
		if err != nil {
			return err
		}
		if err := rb.Put([]byte(rec.ID), nil); err != nil {
			return err
		}
	}
	return nil
}

func getLayer(tx *bbolt.Tx, chain digest.Digest) (layerRecord, bool) {
	var lr layerRecord
	cb := bucket(tx, bktLayers).Bucket([]byte(chain))
	if cb == nil {
		return lr, false
	}
	ok, _ := getJSON(cb, keyInfo, &lr)
	return lr, ok
}

// dropImage removes the image record and its layer references; it returns
// the chain IDs (top first) that no image references any more.
func dropImage(tx *bbolt.Tx, rec *imageRecord) ([]digest.Digest, error) {
	if err := bucket(tx, bktIDs).Delete([]byte(rec.ID)); err != nil {
		return nil, err
	}
	lb := bucket(tx, bktLayers)
	var orphans []digest.Digest
	for i := len(rec.ChainIDs) - 1; i >= 0; i-- {
		chain := rec.ChainIDs[i]
		cb := lb.Bucket([]byte(chain))
		if cb == nil {
			continue
		}
		rb := cb.Bucket(bktRefs)
		if rb != nil {
			if err := rb.Delete([]byte(rec.ID)); err != nil {
				return nil, err
			}
			if k, _ := rb.Cursor().First(); k != nil {
				continue
			}
		}
		if err := lb.DeleteBucket([]byte(chain)); err != nil {
			return nil, err
		}
		orphans = append(orphans, chain)
	}
	return orphans, nil
}
