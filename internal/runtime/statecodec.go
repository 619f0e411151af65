package runtime

import (
	"bytes"
	"encoding/json"
	"sort"
	"strconv"
	"time"
	"unicode/utf8"
)

// state.json is written and read by every command, each in a fresh
// process where encoding/json's first use of containerState builds its
// reflection caches (a millisecond on a loaded host, several times per
// `run`). So it is encoded by hand here, in the format encoding/json gives
// it, and decoded by hand with encoding/json as the fallback for anything
// unexpected (TestStateCodecRoundTrip checks both directions against
// encoding/json).

func (st *containerState) marshal() []byte {
	b := make([]byte, 0, 512)
	b = append(b, `{"id":`...)
	b = appendJSONString(b, st.ID)
	b = append(b, `,"pid":`...)
	b = strconv.AppendInt(b, int64(st.Pid), 10)
	b = append(b, `,"startTime":`...)
	b = strconv.AppendUint(b, st.StartTime, 10)
	b = append(b, `,"bundle":`...)
	b = appendJSONString(b, st.Bundle)
	b = append(b, `,"rootfs":`...)
	b = appendJSONString(b, st.Rootfs)
	b = append(b, `,"created":`...)
	b = appendJSONString(b, st.Created.Format(time.RFC3339Nano))
	b = append(b, `,"cgroupPath":`...)
	b = appendJSONString(b, st.CgroupPath)
	if len(st.CgroupPaths) > 0 {
		b = append(b, `,"cgroupPaths":`...)
		b = appendJSONMap(b, st.CgroupPaths)
	}
	if len(st.Annotations) > 0 {
		b = append(b, `,"annotations":`...)
		b = appendJSONMap(b, st.Annotations)
	}
	b = append(b, `,"owner":`...)
	b = appendJSONString(b, st.Owner)
	for _, f := range []struct {
		name string
		v    bool
	}{{"hasPoststart", st.HasPoststart}, {"hasPoststop", st.HasPoststop}, {"hostPidNS", st.HostPidNS}} {
		if f.v {
			b = append(b, `,"`...)
			b = append(b, f.name...)
			b = append(b, `":true`...)
		}
	}
	return append(b, '}')
}

func appendJSONMap(b []byte, m map[string]string) []byte {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		b = appendJSONString(b, m[k])
	}
	return append(b, '}')
}

// appendJSONString quotes s as encoding/json does (HTML-safe escapes,
// invalid UTF-8 as U+FFFD, U+2028/U+2029 escaped).
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return append(b, '"')
}

// unmarshalState decodes state.json; anything it does not expect goes to
// encoding/json.
func unmarshalState(b []byte, st *containerState) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) == nil && len(bytes.TrimSpace(b[dec.InputOffset():])) == 0 {
		d := &jd{ok: true}
		var s containerState
		for k, e := range d.obj(v) {
			switch k {
			case "id":
				s.ID = d.str(e)
			case "pid":
				s.Pid = int(d.i64(e, 64))
			case "startTime":
				s.StartTime = d.u64(e, 64)
			case "bundle":
				s.Bundle = d.str(e)
			case "rootfs":
				s.Rootfs = d.str(e)
			case "created":
				t, err := time.Parse(time.RFC3339Nano, d.str(e))
				if err != nil {
					d.ok = false
				}
				s.Created = t
			case "cgroupPath":
				s.CgroupPath = d.str(e)
			case "cgroupPaths":
				s.CgroupPaths = d.smap(e)
			case "annotations":
				s.Annotations = d.smap(e)
			case "owner":
				s.Owner = d.str(e)
			case "hasPoststart":
				s.HasPoststart = d.boolean(e)
			case "hasPoststop":
				s.HasPoststop = d.boolean(e)
			case "hostPidNS":
				s.HostPidNS = d.boolean(e)
			default:
				d.ok = false
			}
		}
		if d.ok {
			*st = s
			return nil
		}
	}
	return json.Unmarshal(b, st)
}
