package client

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/api/types/volume"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

var jsonStrings = []string{"", "a", "busybox", "<a&b>", "line\u2028sep\u2029", "bad\xffutf8", "tab\tnl\n\r", `quote"back\`, "ünïcödé", "ctl\x01\x1f\b\f", "/bin/sh"}

// fill sets v (settable) to random content, depth-limited.
func fill(r *rand.Rand, v reflect.Value, depth int) {
	t := v.Type()
	switch t {
	case reflect.TypeFor[netip.Addr]():
		v.Set(reflect.ValueOf([]netip.Addr{{}, netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("fe80::1%eth0")}[r.IntN(3)]))
		return
	case reflect.TypeFor[netip.Prefix]():
		v.Set(reflect.ValueOf([]netip.Prefix{{}, netip.MustParsePrefix("10.0.0.0/8")}[r.IntN(2)]))
		return
	case reflect.TypeFor[time.Time]():
		return
	}
	switch t.Kind() {
	case reflect.Bool:
		v.SetBool(r.IntN(2) == 0)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if r.IntN(3) > 0 {
			v.SetInt(int64(r.IntN(200) - 50))
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if r.IntN(3) > 0 {
			v.SetUint(uint64(r.IntN(200)))
		}
	case reflect.Float32, reflect.Float64:
		if r.IntN(4) == 0 {
			v.SetFloat(r.Float64() * 10)
		}
	case reflect.String:
		v.SetString(jsonStrings[r.IntN(len(jsonStrings))])
	case reflect.Pointer:
		if depth > 0 && r.IntN(3) > 0 {
			p := reflect.New(t.Elem())
			fill(r, p.Elem(), depth-1)
			v.Set(p)
		}
	case reflect.Slice:
		switch n := r.IntN(4); {
		case n == 0 || depth == 0:
		default:
			s := reflect.MakeSlice(t, n-1, n-1)
			for i := range n - 1 {
				fill(r, s.Index(i), depth-1)
			}
			v.Set(s)
		}
	case reflect.Array:
		for i := range v.Len() {
			fill(r, v.Index(i), depth-1)
		}
	case reflect.Map:
		switch n := r.IntN(4); {
		case n == 0 || depth == 0:
		default:
			m := reflect.MakeMap(t)
			for range n - 1 {
				k := reflect.New(t.Key()).Elem()
				fill(r, k, depth-1)
				e := reflect.New(t.Elem()).Elem()
				fill(r, e, depth-1)
				m.SetMapIndex(k, e)
			}
			v.Set(m)
		}
	case reflect.Interface:
		if t.NumMethod() == 0 && r.IntN(2) == 0 {
			v.Set(reflect.ValueOf(jsonStrings[r.IntN(len(jsonStrings))]))
		}
	case reflect.Struct:
		for i := range t.NumField() {
			if t.Field(i).IsExported() {
				fill(r, v.Field(i), depth)
			}
		}
	}
}

type zeroer struct{ N int }

func (z zeroer) IsZero() bool { return z.N < 0 }

type textKey string

func (k textKey) MarshalText() ([]byte, error) { return []byte("T" + string(k)), nil }

type Embedded struct {
	E1 string
	E2 int `json:"e2,omitempty"`
}

type edgeCases struct {
	*Embedded
	Plain   string
	Renamed string `json:"renamed"`
	Skipped string `json:"-"`
	//lint:ignore SA5008 a field named "-" is what this case tests
	Dash      string          `json:"-,"`
	OmitZero  zeroer          `json:",omitzero"`
	OmitZeroT time.Duration   `json:",omitzero"`
	Both      []string        `json:",omitempty,omitzero"`
	Text      textKey         // TextMarshaler value
	TextMap   map[textKey]int // string-kind keys: used as they are
	StructKey map[structKey]int
	Any       any
	Arr       [2]int
	Addr      netip.Addr `json:",omitzero"`
	//lint:ignore U1000 an unexported field, which must not be encoded
	private string
	Ptr     *Embedded        `json:",omitempty"`
	Nested  map[string][]any `json:",omitempty"`
}

type structKey struct{ A, B string }

func (k structKey) MarshalText() ([]byte, error) { return []byte(k.B + "/" + k.A), nil }

// fallbacks always go to encoding/json.
type fallbacks struct {
	IntMap    map[int]string // falls back unless nil
	Bytes     []byte         // falls back unless nil
	Float     float64
	Raw       json.RawMessage
	StringOpt int `json:",string"`
	Time      time.Time
}

func TestMarshalJSONMatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	types := []reflect.Type{
		reflect.TypeFor[container.CreateRequest](), reflect.TypeFor[container.UpdateConfig](), reflect.TypeFor[container.Config](),
		reflect.TypeFor[container.ExecCreateRequest](), reflect.TypeFor[container.ExecStartRequest](),
		reflect.TypeFor[network.CreateRequest](), reflect.TypeFor[network.ConnectRequest](), reflect.TypeFor[volume.CreateRequest](),
		reflect.TypeFor[registry.AuthConfig](), reflect.TypeFor[ocispec.Platform](), reflect.TypeFor[Filters](), reflect.TypeFor[edgeCases](),
		reflect.TypeFor[fallbacks](),
	}
	for _, typ := range types {
		fast := 0
		const n = 300
		for i := range n {
			v := reflect.New(typ)
			fill(r, v.Elem(), 4)
			for _, x := range []any{v.Interface(), v.Elem().Interface()} {
				want, wantErr := json.Marshal(x)
				got, err := marshalJSON(x)
				if (err == nil) != (wantErr == nil) || !bytes.Equal(got, want) {
					t.Fatalf("%v #%d:\ngot  %s (%v)\nwant %s (%v)", typ, i, got, err, want, wantErr)
				}
				if _, ok := marshalJSONFast(x); ok {
					fast++
				}
			}
		}
		t.Logf("%v: %d of %d encoded without encoding/json", typ, fast, 2*n)
		if (typ == reflect.TypeFor[fallbacks]()) != (fast == 0) {
			t.Errorf("%v: %d encoded by the fast path", typ, fast)
		}
	}
}

// The request berth run sends must not fall back to encoding/json: that
// fallback is what this encoder exists to avoid.
func TestMarshalJSONRunRequestIsFast(t *testing.T) {
	req := container.CreateRequest{
		Config: &container.Config{Image: "busybox", Cmd: []string{"sleep", "100"}, Labels: map[string]string{"helper": "1"},
			Env: []string{"A=b"}, Tty: true, OpenStdin: true, AttachStdout: true},
		HostConfig: &container.HostConfig{NetworkMode: "none", AutoRemove: true, Binds: []string{"/a:/b"},
			RestartPolicy: container.RestartPolicy{Name: "no"}, LogConfig: container.LogConfig{Type: "json-file"},
			Resources: container.Resources{Memory: 64 << 20, NanoCPUs: 5e8, Ulimits: nil}},
		NetworkingConfig: &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{"none": {}}},
	}
	port := network.MustParsePort("80/tcp")
	req.Config.ExposedPorts = network.PortSet{port: {}}
	req.HostConfig.PortBindings = network.PortMap{port: {{HostPort: "8080"}}}
	got, ok := marshalJSONFast(req)
	if !ok {
		t.Fatal("run's create request fell back to encoding/json")
	}
	want, _ := json.Marshal(req)
	if !bytes.Equal(got, want) {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}
