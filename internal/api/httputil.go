package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/api/backend"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// boolValue reads a boolean query parameter as docker does: empty, "0",
// "no", "false", "none" (any case) are false, anything else is true.
func boolValue(r *http.Request, key string) bool {
	s := strings.ToLower(strings.TrimSpace(r.URL.Query().Get(key)))
	return !(s == "" || s == "0" || s == "no" || s == "false" || s == "none")
}

// boolValueOr is boolValue with a default for an absent parameter.
func boolValueOr(r *http.Request, key string, def bool) bool {
	if _, ok := r.URL.Query()[key]; !ok {
		return def
	}
	return boolValue(r, key)
}

// intValue reads an integer parameter; absent or empty gives def.
func intValue(r *http.Request, key string, def int) (int, error) {
	s := strings.TrimSpace(r.URL.Query().Get(key))
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, invalidArg("invalid value for %s: %q: %v", key, s, err)
	}
	return n, nil
}

// uintValue is intValue for sizes (resize h/w).
func uintValue(r *http.Request, key string) (uint, error) {
	s := r.URL.Query().Get(key)
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, invalidArg("invalid %s: %q", key, s)
	}
	return uint(n), nil
}

// parseFilters decodes the "filters" parameter in either encoding docker
// has used: {"term":{"value":true}} (current) or {"term":["value"]}
// (before API 1.22; still sent by some clients).
func parseFilters(raw string) (backend.Filters, error) {
	f := backend.Filters{}
	if strings.TrimSpace(raw) == "" {
		return f, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		return nil, invalidArg("invalid filter: %v", err)
	}
	for term, v := range m {
		var set map[string]bool
		if err := json.Unmarshal(v, &set); err == nil {
			f[term] = map[string]bool{}
			for val, on := range set {
				if on {
					f[term][val] = true
				}
			}
			continue
		}
		var list []string
		if err := json.Unmarshal(v, &list); err != nil {
			return nil, invalidArg("invalid filter: term %q: expected object or array of strings", term)
		}
		f.Add(term, list...)
	}
	return f, nil
}

func filtersParam(r *http.Request) (backend.Filters, error) {
	return parseFilters(r.URL.Query().Get("filters"))
}

// decodeJSON reads a JSON body into v. An empty body leaves v untouched;
// malformed JSON is a 400 with the decoder's message, as docker does.
func decodeJSON(r *http.Request, v any) error {
	if r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		return invalidArg("invalid JSON: %v", err)
	}
	return nil
}

// writeJSON sends v with status code.
// The body is encoded first and sent with a Content-Length: one write,
// no chunking, and an encoding error still becomes a proper 500.
func writeJSON(w http.ResponseWriter, code int, v any) error {
	// A pooled buffer: a list of 1000 containers is ~650 KB of JSON, which
	// json.Marshal would grow, copy out and copy again to append the
	// newline, on every `ps -a`.
	buf := jsonBufs.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= maxPooledJSON {
			jsonBufs.Put(buf)
		}
	}()
	if err := json.NewEncoder(buf).Encode(v); err != nil { // Encode ends with '\n', as docker's
		return fmt.Errorf("encode response: %w", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(code)
	_, err := w.Write(buf.Bytes())
	return err
}

// maxPooledJSON bounds the buffers kept for reuse, so one huge response
// does not pin its memory in an idle daemon.
const maxPooledJSON = 4 << 20

var jsonBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// parseTime parses docker's since/until values: Unix seconds with an
// optional fractional part ("1700000000.123456789"), RFC 3339, or a Go
// duration relative to now ("10m": that long ago).
func parseTime(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if sec, frac, ok := strings.Cut(s, "."); ok || isDigits(s) {
		if isDigits(sec) && (frac == "" || isDigits(frac)) {
			n, err := strconv.ParseInt(sec, 10, 64)
			if err == nil {
				var ns int64
				if frac != "" {
					frac = (frac + "000000000")[:9]
					ns, _ = strconv.ParseInt(frac, 10, 64)
				}
				return time.Unix(n, ns), nil
			}
		}
	}
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, invalidArg("invalid time %q: expected Unix timestamp, RFC 3339 date or duration", s)
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// parsePlatform reads "os[/arch[/variant]]" or a JSON OCI platform (newer
// clients send the latter for some endpoints). Empty gives nil.
func parsePlatform(s string) (*ocispec.Platform, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	if strings.HasPrefix(s, "{") {
		var p ocispec.Platform
		if err := json.Unmarshal([]byte(s), &p); err != nil {
			return nil, invalidArg("invalid platform: %v", err)
		}
		return &p, nil
	}
	parts := strings.Split(s, "/")
	if len(parts) > 3 || parts[0] == "" {
		return nil, invalidArg("%q: unknown operating system or architecture: invalid argument", s)
	}
	p := &ocispec.Platform{OS: strings.ToLower(parts[0])}
	if len(parts) > 1 {
		p.Architecture = parts[1]
	}
	if len(parts) > 2 {
		p.Variant = parts[2]
	}
	return p, nil
}

// flusher flushes w if it can.
func flush(w http.ResponseWriter) {
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
		return
	}
	_ = http.NewResponseController(w).Flush()
}

// jsonLines writes one JSON document per line and flushes after each, for
// events, stats and progress streams.
type jsonLines struct {
	w   http.ResponseWriter
	enc *json.Encoder
}

func newJSONLines(w http.ResponseWriter, contentType string) *jsonLines {
	w.Header().Set("Content-Type", contentType)
	return &jsonLines{w: w, enc: json.NewEncoder(w)}
}

func (j *jsonLines) send(v any) error {
	if err := j.enc.Encode(v); err != nil {
		return fmt.Errorf("write stream: %w", err)
	}
	flush(j.w)
	return nil
}

var timeNow = time.Now

func sortStrings(s []string) { sort.Strings(s) }

// abortOnError is for body streams that already sent a 200: the only way
// left to tell the client the body is truncated is to cut the connection
// without the final chunk (net/http does that for ErrAbortHandler).
func abortOnError(_ int64, err error) error {
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	return nil
}
