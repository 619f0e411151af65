package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strings"
	"text/tabwriter"
	"text/template"
	"time"
	"unicode"

	units "github.com/docker/go-units"
)

// templateFuncs are docker's --format helpers, so scripts written for docker work.
var templateFuncs = template.FuncMap{
	"json": func(v any) string {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(v)
		return strings.TrimSpace(buf.String())
	},
	"split": strings.Split,
	// join accepts any slice: inspect templates run on decoded JSON ([]any).
	"join": func(v any, sep string) string {
		rv := reflect.ValueOf(v)
		if rv.Kind() != reflect.Slice {
			return fmt.Sprint(v)
		}
		parts := make([]string, rv.Len())
		for i := range parts {
			parts[i] = fmt.Sprint(rv.Index(i).Interface())
		}
		return strings.Join(parts, sep)
	},
	"title": func(s string) string {
		prev := ' '
		return strings.Map(func(r rune) rune {
			defer func() { prev = r }()
			if unicode.IsSpace(prev) || prev == '-' || prev == '_' {
				return unicode.ToTitle(r)
			}
			return r
		}, s)
	},
	"lower": strings.ToLower,
	"upper": strings.ToUpper,
	"pad": func(s string, left, right int) string {
		return strings.Repeat(" ", left) + s + strings.Repeat(" ", right)
	},
	"truncate": func(s string, n int) string {
		r := []rune(s)
		if len(r) > n {
			return string(r[:n])
		}
		return s
	},
}

// parseTemplate parses a --format template with docker's functions.
func parseTemplate(format string) (*template.Template, error) {
	t, err := template.New("").Funcs(templateFuncs).Parse(format)
	if err != nil {
		return nil, fmt.Errorf("template parsing error: %w", err)
	}
	return t, nil
}

// newTableWriter uses docker's column settings (minwidth 10, padding 3).
func newTableWriter(out io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)
}

// listFormat describes how a list command renders its rows.
type listFormat struct {
	format  string            // user's --format ("", "table", "table TPL", "json", "TPL")
	table   string            // default table template (tab separated)
	quiet   string            // template used for -q
	isQuiet bool              // -q given
	headers map[string]string // method name → column header
	noFast  bool              // tests: always use text/template
}

// render writes rows (values whose exported methods are template fields).
// Table formats print a header by executing the template against headers,
// the same trick docker uses so that custom "table {{.X}}" headers work.
func (f listFormat) render(out io.Writer, rows []any) error {
	format := f.format
	switch {
	case f.isQuiet && (format == "" || format == "table"):
		format = f.quiet
	case format == "" || format == "table":
		format = "table " + f.table
	}
	if format == "json" {
		for _, r := range rows {
			b, err := marshalMethods(r)
			if err != nil {
				return err
			}
			fmt.Fprintln(out, string(b))
		}
		return nil
	}
	isTable := strings.HasPrefix(format, "table")
	if isTable {
		format = strings.TrimSpace(strings.TrimPrefix(format, "table"))
	}
	format = unescapeTabs(format)
	if fast, ok := compileFieldsOnly(format, rows); ok && !f.noFast {
		return fast.render(out, isTable, f.headers, rows)
	}
	tmpl, err := parseTemplate(format + "\n")
	if err != nil {
		return err
	}
	var w io.Writer = out
	var tw *tabwriter.Writer
	bw := bufio.NewWriterSize(out, 64<<10) // see fieldsFormat.render
	if isTable {
		tw = newTableWriter(bw)
		w = tw
		if err := tmpl.Execute(tw, f.headers); err != nil {
			return fmt.Errorf("template: %w", err)
		}
	}
	for _, r := range rows {
		if err := tmpl.Execute(w, r); err != nil {
			return fmt.Errorf("template: %w", err)
		}
	}
	if tw != nil {
		if err := tw.Flush(); err != nil {
			return err
		}
		return bw.Flush()
	}
	return nil
}

// unescapeTabs lets users write `\t` in a shell-quoted --format.
func unescapeTabs(s string) string {
	return strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(s)
}

// marshalMethods renders a row for --format json: one key per exported
// niladic method, as docker's formatter does.
func marshalMethods(v any) ([]byte, error) {
	rv := reflect.ValueOf(v)
	rt := rv.Type()
	m := map[string]any{}
	for i := 0; i < rt.NumMethod(); i++ {
		meth := rt.Method(i)
		if meth.Type.NumIn() != 1 || meth.Type.NumOut() != 1 {
			continue
		}
		m[meth.Name] = rv.Method(i).Call(nil)[0].Interface()
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return nil, err
	}
	return bytes.TrimSpace(buf.Bytes()), nil
}

// executeInspect renders inspect-style output: either one Go template per
// object or a JSON array indented like docker's.
func executeInspect(out io.Writer, format string, objs []any, raws []json.RawMessage) error {
	if format == "" {
		return writeIndentedJSON(out, raws)
	}
	if format == "json" {
		return writeIndentedJSON(out, raws)
	}
	tmpl, err := parseTemplate(unescapeTabs(format))
	if err != nil {
		return err
	}
	// A missing key is an error for inspect, as in docker.
	tmpl = tmpl.Option("missingkey=error")
	for i := range raws {
		// Templates see the decoded raw JSON so that every field the daemon
		// sent is reachable, even ones our types do not know.
		var generic any
		if raws[i] != nil {
			// UseNumber keeps 1073741824 from printing as 1.073741824e+09.
			dec := json.NewDecoder(bytes.NewReader(raws[i]))
			dec.UseNumber()
			if err := dec.Decode(&generic); err != nil {
				return err
			}
		} else {
			generic = objs[i]
		}
		var buf bytes.Buffer
		if err := tmpl.Execute(&buf, generic); err != nil {
			fmt.Fprintln(out)
			return fmt.Errorf("template parsing error: %w", err)
		}
		fmt.Fprintln(out, buf.String())
	}
	return nil
}

func writeIndentedJSON(out io.Writer, raws []json.RawMessage) error {
	var buf bytes.Buffer
	buf.WriteString("[")
	for i, r := range raws {
		if i > 0 {
			buf.WriteString(",")
		}
		var ind bytes.Buffer
		if err := json.Indent(&ind, bytes.TrimSpace(r), "    ", "    "); err != nil {
			return err
		}
		buf.WriteString("\n    ")
		buf.Write(ind.Bytes())
	}
	if len(raws) > 0 {
		buf.WriteString("\n")
	}
	buf.WriteString("]\n")
	_, err := out.Write(buf.Bytes())
	return err
}

// Humanized values with docker's units.

// humanSince renders "3 minutes ago" for a time in the past.
func humanSince(t time.Time, now time.Time) string {
	if t.IsZero() {
		return ""
	}
	return units.HumanDuration(now.Sub(t)) + " ago"
}

// humanSize renders a byte count as docker's SIZE columns do ("1.99MB").
func humanSize(n int64) string {
	return units.HumanSizeWithPrecision(float64(n), 3)
}

// bytesSize renders memory like docker stats ("1.5MiB").
func bytesSize(n float64) string {
	return units.BytesSize(n)
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// ellipsis truncates s to n runes with "…" like docker's formatter.
func ellipsis(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	if n <= 1 {
		return string(r[:n])
	}
	return string(r[:n-1]) + "…"
}

func humanSizePrec(n float64, p int) string {
	return units.HumanSizeWithPrecision(n, p)
}

// newTopWriter uses the column settings of docker top.
func newTopWriter(out io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(out, 20, 1, 3, ' ', 0)
}

// fieldsFormat is a --format made only of literal text and {{.Field}}
// actions (every default table is). It renders rows by calling the row's
// methods directly, about ten times faster than text/template, which
// matters for `ps -a` with a thousand containers.
type fieldsFormat struct {
	literals []string // len(fields)+1 pieces of text around the fields
	fields   []string
	methods  []int // method index on the row type, per field
}

func compileFieldsOnly(format string, rows []any) (*fieldsFormat, bool) {
	ff := &fieldsFormat{}
	rest := format
	for {
		open := strings.Index(rest, "{{")
		if open < 0 {
			break
		}
		end := strings.Index(rest[open:], "}}")
		if end < 0 {
			return nil, false
		}
		action := strings.TrimSpace(rest[open+2 : open+end])
		name, ok := strings.CutPrefix(action, ".")
		if !ok || name == "" || !isIdent(name) {
			return nil, false // other template actions: use text/template
		}
		ff.literals = append(ff.literals, rest[:open])
		ff.fields = append(ff.fields, name)
		rest = rest[open+end+2:]
	}
	ff.literals = append(ff.literals, rest)
	for _, lit := range ff.literals {
		if strings.Contains(lit, "{{") || strings.Contains(lit, "}}") {
			return nil, false // other template actions: use text/template
		}
	}
	if len(rows) == 0 {
		return ff, true
	}
	t := reflect.TypeOf(rows[0])
	for _, r := range rows {
		if reflect.TypeOf(r) != t {
			return nil, false
		}
	}
	for _, name := range ff.fields {
		m, ok := t.MethodByName(name)
		if !ok || m.Type.NumIn() != 1 || m.Type.NumOut() != 1 || m.Type.Out(0).Kind() != reflect.String {
			return nil, false // let text/template report the error
		}
		ff.methods = append(ff.methods, m.Index)
	}
	return ff, true
}

func (ff *fieldsFormat) render(out io.Writer, isTable bool, headers map[string]string, rows []any) error {
	var w io.Writer = out
	var tw *tabwriter.Writer
	var buf strings.Builder
	// tabwriter writes each cell and its padding separately: buffer them,
	// or a thousand-row `ps -a` makes tens of thousands of write calls.
	bw := bufio.NewWriterSize(out, 64<<10)
	if isTable {
		tw = newTableWriter(bw)
		w = tw
		for i, name := range ff.fields {
			buf.WriteString(ff.literals[i])
			if h, ok := headers[name]; ok {
				buf.WriteString(h)
			} else {
				buf.WriteString("<no value>")
			}
		}
		buf.WriteString(ff.literals[len(ff.fields)])
		buf.WriteByte('\n')
	}
	for _, r := range rows {
		v := reflect.ValueOf(r)
		for i, m := range ff.methods {
			buf.WriteString(ff.literals[i])
			buf.WriteString(v.Method(m).Call(nil)[0].String())
		}
		buf.WriteString(ff.literals[len(ff.fields)])
		buf.WriteByte('\n')
	}
	if _, err := io.WriteString(w, buf.String()); err != nil {
		return err
	}
	if tw != nil {
		if err := tw.Flush(); err != nil {
			return err
		}
		return bw.Flush()
	}
	return nil
}

func isIdent(s string) bool {
	for i, r := range s {
		if !(r == '_' || unicode.IsLetter(r) || i > 0 && unicode.IsDigit(r)) {
			return false
		}
	}
	return true
}
