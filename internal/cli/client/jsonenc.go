package client

import (
	"encoding"
	"encoding/json"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// marshalJSON encodes request bodies byte for byte as json.Marshal does,
// without encoding/json's per-type setup. Why: json.Marshal builds an
// encoder for every type reachable from the value's type on first use;
// for container.CreateRequest (Config, HostConfig with Resources, mounts,
// networking, …) that first call costs 2-5 ms of a ~28 ms `berth run -d`,
// while walking the value itself takes microseconds. Anything this walk
// does not handle exactly (floats, []byte, json.Marshaler, ",string",
// name clashes between embedded structs, non-string map keys …) makes it
// give up, and json.Marshal encodes the whole value instead.
// jsonenc_test.go compares both on randomly filled request types.
func marshalJSON(v any) ([]byte, error) {
	if b, ok := marshalJSONFast(v); ok {
		return b, nil
	}
	return json.Marshal(v)
}

// marshalJSONFast is marshalJSON without the fallback (ok false).
func marshalJSONFast(v any) ([]byte, bool) {
	e := jsonEncoder{buf: make([]byte, 0, 2048)}
	if !e.value(reflect.ValueOf(v)) {
		return nil, false
	}
	return e.buf, true
}

var (
	jsonMarshalerType = reflect.TypeFor[json.Marshaler]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
	isZeroerType      = reflect.TypeFor[interface{ IsZero() bool }]()
)

type jsonEncoder struct{ buf []byte }

// value appends v; false: not handled exactly, use encoding/json.
func (e *jsonEncoder) value(v reflect.Value) bool {
	if !v.IsValid() {
		e.buf = append(e.buf, "null"...)
		return true
	}
	t := v.Type()
	if t.Kind() != reflect.Interface {
		if t.Implements(jsonMarshalerType) || reflect.PointerTo(t).Implements(jsonMarshalerType) {
			return false
		}
		if t.Implements(textMarshalerType) {
			if t.Kind() == reflect.Pointer && v.IsNil() {
				e.buf = append(e.buf, "null"...)
				return true
			}
			text, err := v.Interface().(encoding.TextMarshaler).MarshalText()
			if err != nil {
				return false
			}
			e.buf = appendJSONString(e.buf, string(text))
			return true
		}
		if reflect.PointerTo(t).Implements(textMarshalerType) {
			return false // encoding/json's answer depends on addressability
		}
	}
	switch t.Kind() {
	case reflect.Bool:
		e.buf = strconv.AppendBool(e.buf, v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		e.buf = strconv.AppendInt(e.buf, v.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		e.buf = strconv.AppendUint(e.buf, v.Uint(), 10)
	case reflect.String:
		e.buf = appendJSONString(e.buf, v.String())
	case reflect.Interface, reflect.Pointer:
		if v.IsNil() {
			e.buf = append(e.buf, "null"...)
			return true
		}
		return e.value(v.Elem())
	case reflect.Slice:
		if v.IsNil() {
			e.buf = append(e.buf, "null"...)
			return true
		}
		if t.Elem().Kind() == reflect.Uint8 {
			return false // base64, or bytes of a Marshaler
		}
		return e.array(v)
	case reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return false
		}
		return e.array(v)
	case reflect.Map:
		return e.mapValue(v)
	case reflect.Struct:
		e.buf = append(e.buf, '{')
		first := true
		if !e.fields(v, &first, nil) {
			return false
		}
		e.buf = append(e.buf, '}')
	default: // floats, complex, chan, func, unsafe pointers
		return false
	}
	return true
}

func (e *jsonEncoder) array(v reflect.Value) bool {
	e.buf = append(e.buf, '[')
	for i := range v.Len() {
		if i > 0 {
			e.buf = append(e.buf, ',')
		}
		if !e.value(v.Index(i)) {
			return false
		}
	}
	e.buf = append(e.buf, ']')
	return true
}

func (e *jsonEncoder) mapValue(v reflect.Value) bool {
	if v.IsNil() {
		e.buf = append(e.buf, "null"...)
		return true
	}
	// Keys as encoding/json resolves them: string kinds as they are, else
	// a value-receiver TextMarshaler's text (network.Port); sorted.
	kt := v.Type().Key()
	type kv struct {
		key string
		k   reflect.Value
	}
	keys := make([]kv, 0, v.Len())
	switch {
	case kt.Kind() == reflect.String:
		for _, k := range v.MapKeys() {
			keys = append(keys, kv{k.String(), k})
		}
	case kt.Kind() != reflect.Pointer && kt.Kind() != reflect.Interface && kt.Implements(textMarshalerType):
		for _, k := range v.MapKeys() {
			text, err := k.Interface().(encoding.TextMarshaler).MarshalText()
			if err != nil {
				return false
			}
			keys = append(keys, kv{string(text), k})
		}
	default:
		return false // number keys
	}
	slices.SortFunc(keys, func(a, b kv) int { return strings.Compare(a.key, b.key) })
	e.buf = append(e.buf, '{')
	for i, k := range keys {
		if i > 0 {
			e.buf = append(e.buf, ',')
		}
		e.buf = appendJSONString(e.buf, k.key)
		e.buf = append(e.buf, ':')
		if !e.value(v.MapIndex(k.k)) {
			return false
		}
	}
	e.buf = append(e.buf, '}')
	return true
}

// fields appends v's fields, embedded structs' fields in their place (as
// encoding/json promotes them). names collects the names seen: any clash
// would need encoding/json's dominance rules, so it gives up.
func (e *jsonEncoder) fields(v reflect.Value, first *bool, names *[]string) bool {
	if names == nil {
		names = new([]string)
	}
	t := v.Type()
	for i := range t.NumField() {
		sf := t.Field(i)
		tag, hasTag := sf.Tag.Lookup("json")
		if tag == "-" {
			continue
		}
		name, opts := tag, ""
		for j := range len(tag) {
			if tag[j] == ',' {
				name, opts = tag[:j], tag[j:]
				break
			}
		}
		if sf.Anonymous {
			ft := sf.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if !sf.IsExported() {
				if ft.Kind() != reflect.Struct {
					continue // ignored by encoding/json too
				}
				return false // promoted fields of an unexported type: rare, let json do it
			}
			if name == "" && ft.Kind() == reflect.Struct {
				if hasTag && opts != "" {
					return false
				}
				fv := v.Field(i)
				if fv.Kind() == reflect.Pointer {
					if fv.IsNil() {
						// its fields still take their names
						if !reserveNames(ft, names) {
							return false
						}
						continue
					}
					fv = fv.Elem()
				}
				if !e.fields(fv, first, names) {
					return false
				}
				continue
			}
		} else if !sf.IsExported() {
			continue
		}
		if name == "" || !validTagName(name) {
			if name != "" {
				return false // encoding/json would fall back to the Go name
			}
			name = sf.Name
		}
		if slices.Contains(*names, name) {
			return false
		}
		*names = append(*names, name)
		omitEmpty, omitZero := false, false
		for _, o := range splitOpts(opts) {
			switch o {
			case "omitempty":
				omitEmpty = true
			case "omitzero":
				omitZero = true
			case "":
			default:
				return false // ",string" and unknown options
			}
		}
		fv := v.Field(i)
		if omitEmpty && isEmptyJSONValue(fv) {
			continue
		}
		if omitZero {
			zero, ok := isZeroJSONValue(fv)
			if !ok {
				return false
			}
			if zero {
				continue
			}
		}
		if !*first {
			e.buf = append(e.buf, ',')
		}
		*first = false
		e.buf = appendJSONString(e.buf, name)
		e.buf = append(e.buf, ':')
		if !e.value(fv) {
			return false
		}
	}
	return true
}

// reserveNames records the field names of a nil embedded struct pointer.
func reserveNames(t reflect.Type, names *[]string) bool {
	for i := range t.NumField() {
		sf := t.Field(i)
		if sf.Anonymous || !sf.IsExported() {
			return false
		}
		tag := sf.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name := tag
		for j := range len(tag) {
			if tag[j] == ',' {
				name = tag[:j]
				break
			}
		}
		if name == "" {
			name = sf.Name
		}
		if slices.Contains(*names, name) {
			return false
		}
		*names = append(*names, name)
	}
	return true
}

func splitOpts(opts string) []string {
	var out []string
	for opts != "" {
		opts = opts[1:] // the comma
		end := len(opts)
		for j := range len(opts) {
			if opts[j] == ',' {
				end = j
				break
			}
		}
		out = append(out, opts[:end])
		opts = opts[end:]
	}
	return out
}

// validTagName is encoding/json's rule for a usable tag name; others are
// replaced by the Go name, which this encoder leaves to encoding/json.
func validTagName(s string) bool {
	for _, c := range s {
		switch {
		case c == '!' || c == '#' || c == '$' || c == '%' || c == '&' || c == '(' || c == ')' || c == '*' ||
			c == '+' || c == '-' || c == '.' || c == '/' || c == ':' || c == ';' || c == '<' || c == '=' ||
			c == '>' || c == '?' || c == '@' || c == '[' || c == ']' || c == '^' || c == '_' || c == '{' ||
			c == '|' || c == '}' || c == '~' || c == ' ':
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		default:
			return false // also non-ASCII letters, which encoding/json accepts: it encodes those
		}
	}
	return true
}

func isEmptyJSONValue(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() == 0
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Interface, reflect.Pointer:
		return v.IsZero()
	}
	return false
}

// isZeroJSONValue is omitzero's test: an IsZero method, else the zero value.
func isZeroJSONValue(v reflect.Value) (zero, ok bool) {
	t := v.Type()
	switch {
	case t.Implements(isZeroerType):
		if (t.Kind() == reflect.Pointer || t.Kind() == reflect.Interface) && v.IsNil() {
			return true, true
		}
		if t.Kind() == reflect.Interface && v.Elem().Kind() == reflect.Pointer && v.Elem().IsNil() {
			return true, true
		}
		return v.Interface().(interface{ IsZero() bool }).IsZero(), true
	case reflect.PointerTo(t).Implements(isZeroerType):
		p := reflect.New(t)
		p.Elem().Set(v)
		return p.Interface().(interface{ IsZero() bool }).IsZero(), true
	}
	return v.IsZero(), true
}

// appendJSONString is encoding/json's string encoding with HTML escaping
// (json.Marshal's default): <, >, & as \u003c…, U+2028/9 escaped,
// invalid UTF-8 as \ufffd.
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
