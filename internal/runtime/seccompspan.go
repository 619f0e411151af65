package runtime

import (
	"bytes"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/runtime/seccomp"
)

// Create's shortcut past the seccomp section of config.json. With docker's
// default profile that section is most of the document, and decoding it
// (then hashing it for the compile cache) is most of create's parsing time.
// So create first looks for the section's exact text in the seccomp
// package's raw cache (seccomp.LookupRaw). On a hit it parses the document
// with the section's "syscalls" list replaced by [], which leaves every other
// field as it was, and takes the compiled program from the cache. On a miss
// (or anything unusual in the document's shape: duplicate or escaped keys,
// keys differing only in case, which encoding/json would match) it parses
// the whole document as before and stores the program for the next create.

// seccompSpan returns the text of linux.seccomp in the JSON document b and
// the position of that section's "syscalls" value (sysStart == sysEnd == -1
// when it has none); ok is false when b has no such section or its shape is
// unusual (see above).
func seccompSpan(b []byte) (start, end, sysStart, sysEnd int, ok bool) {
	ls, le, ok := member(b, skipWS(b, 0), "linux")
	if !ok || ls < 0 {
		return 0, 0, 0, 0, false
	}
	start, end, ok = member(b[:le], ls, "seccomp")
	if !ok || start < 0 || b[start] != '{' {
		return 0, 0, 0, 0, false
	}
	sysStart, sysEnd, ok = member(b[:end], start, "syscalls")
	if !ok || (sysStart >= 0 && b[sysStart] != '[') {
		return 0, 0, 0, 0, false
	}
	return start, end, sysStart, sysEnd, true
}

// member finds key in the object starting at b[i] and returns its value's
// span, or -1, -1 when the object has no such key. ok is false for
// malformed input, a duplicate key, an escaped key, or a key equal to key
// but for case.
func member(b []byte, i int, key string) (vs, ve int, ok bool) {
	vs, ve = -1, -1
	if i >= len(b) || b[i] != '{' {
		return 0, 0, false
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return vs, ve, true
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return 0, 0, false
		}
		ke := skipString(b, i)
		if ke < 0 {
			return 0, 0, false
		}
		k := b[i+1 : ke-1]
		if bytes.IndexByte(k, '\\') >= 0 {
			return 0, 0, false
		}
		i = skipWS(b, ke)
		if i >= len(b) || b[i] != ':' {
			return 0, 0, false
		}
		i = skipWS(b, i+1)
		e := skipValue(b, i)
		if e < 0 {
			return 0, 0, false
		}
		if string(k) == key {
			if vs >= 0 {
				return 0, 0, false
			}
			vs, ve = i, e
		} else if bytes.EqualFold(k, []byte(key)) {
			return 0, 0, false
		}
		i = skipWS(b, e)
		if i >= len(b) {
			return 0, 0, false
		}
		if b[i] == '}' {
			return vs, ve, true
		}
		if b[i] != ',' {
			return 0, 0, false
		}
		i = skipWS(b, i+1)
	}
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at b[i], or -1.
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return -1
}

// skipValue returns the index after the value starting at b[i], or -1. It
// only delimits values; the real parse validates them.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				e := skipString(b, i)
				if e < 0 {
					return -1
				}
				i = e - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return -1
	}
	s := i
	for i < len(b) && bytes.IndexByte([]byte(",}] \t\r\n"), b[i]) < 0 {
		i++
	}
	if i == s {
		return -1
	}
	return i
}

// seccompHint is what loadSpecCached found: the section's text (to store
// the program under after a miss) and, on a hit, the program.
type seccompHint struct {
	raw  []byte
	prog *seccomp.Program
}

// loadSpecCached is loadSpec for create, with the raw seccomp cache. On a
// hit the returned spec's linux.seccomp.syscalls is empty: hint.prog stands
// for it. hint is nil when the document has no usable seccomp section.
func (r *Runtime) loadSpecCached(b []byte) (*specs.Spec, []byte, *seccompHint, error) {
	start, end, ss, se, ok := seccompSpan(b)
	if !ok {
		s, err := ParseSpec(b)
		return s, b, nil, err
	}
	hint := &seccompHint{raw: b[start:end]}
	if ss >= 0 {
		if hint.prog = seccomp.LookupRaw(hint.raw, r.seccompOpts()); hint.prog != nil {
			stub := make([]byte, 0, len(b)-(se-ss)+2)
			stub = append(append(append(stub, b[:ss]...), "[]"...), b[se:]...)
			if s, err := ParseSpec(stub); err == nil && s.Linux != nil && s.Linux.Seccomp != nil {
				return s, b, hint, nil
			}
			// errors are reported from the document itself (positions)
			hint.prog = nil
		}
	}
	s, err := ParseSpec(b)
	return s, b, hint, err
}
