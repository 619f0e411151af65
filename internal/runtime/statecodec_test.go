package runtime

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// The hand-written state.json codec must agree with encoding/json both ways.
func TestStateCodecRoundTrip(t *testing.T) {
	created := time.Date(2026, 11, 29, 21, 0, 0, 123456789, time.UTC)
	for _, st := range []containerState{
		{ID: "a", Created: created, Owner: "root"},
		{ID: "b-1.x", Pid: 4242, StartTime: 1 << 40, Bundle: "/run/b \"q\" \\ <&> \u2028 é \x01", Rootfs: "/r\xff\xfe",
			Created: created.Local(), CgroupPath: "/berth/b", CgroupPaths: map[string]string{"cpu": "/sys/fs/cgroup/cpu/x", "name=systemd": "/s"},
			Annotations: map[string]string{"k\n": "v\t", "": ""}, Owner: "root", HasPoststart: true, HasPoststop: true, HostPidNS: true},
	} {
		var viaJSON containerState
		if err := json.Unmarshal(st.marshal(), &viaJSON); err != nil {
			t.Fatalf("%s: encoding/json rejects our encoding: %v\n%s", st.ID, err, st.marshal())
		}
		ref, err := json.Marshal(&st)
		if err != nil {
			t.Fatal(err)
		}
		if string(st.marshal()) != string(ref) {
			t.Errorf("%s: encoding differs:\n got %s\nwant %s", st.ID, st.marshal(), ref)
		}
		var ours containerState
		if err := unmarshalState(ref, &ours); err != nil {
			t.Fatal(err)
		}
		var want containerState
		if err := json.Unmarshal(ref, &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(ours, want) || !reflect.DeepEqual(viaJSON, want) {
			t.Errorf("%s: decoded differently:\nours %+v\njson %+v\nwant %+v", st.ID, ours, viaJSON, want)
		}
	}
	var st containerState
	if err := unmarshalState([]byte(`{"id":"x","pid":"nope"}`), &st); err == nil {
		t.Error("a malformed state decoded without error")
	}
}
