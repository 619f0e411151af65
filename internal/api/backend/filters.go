package backend

import (
	"path"
	"sort"
	"strings"
)

// Filters is docker's filter set: term → set of values. An item matches
// when every term is satisfied, a term when any of its values matches.
// The API parses both wire encodings ({"k":{"v":true}} and the legacy
// {"k":["v"]}) into this one type. A nil Filters is empty.
type Filters map[string]map[string]bool

// Len is the number of terms.
func (f Filters) Len() int { return len(f) }

// Has reports whether term is present.
func (f Filters) Has(term string) bool { _, ok := f[term]; return ok }

// Get returns the values of term, sorted.
func (f Filters) Get(term string) []string {
	vals := make([]string, 0, len(f[term]))
	for v := range f[term] {
		vals = append(vals, v)
	}
	sort.Strings(vals)
	return vals
}

// Add adds values to term (creating f's inner map as needed; f must be non-nil).
func (f Filters) Add(term string, values ...string) {
	if f[term] == nil {
		f[term] = map[string]bool{}
	}
	for _, v := range values {
		f[term][v] = true
	}
}

// ExactMatch reports whether term is absent or source is one of its values.
func (f Filters) ExactMatch(term, source string) bool {
	vals, ok := f[term]
	if !ok || len(vals) == 0 {
		return true
	}
	return vals[source]
}

// Match reports whether term is absent or one of its values, used as a
// shell pattern (path.Match), matches source, as docker's name filter does
// for globs; a value that is not a valid pattern is compared as a substring.
func (f Filters) Match(term, source string) bool {
	vals, ok := f[term]
	if !ok || len(vals) == 0 {
		return true
	}
	for v := range vals {
		if ok, err := path.Match(v, source); err == nil && ok {
			return true
		}
		if strings.Contains(source, v) {
			return true
		}
	}
	return false
}

// MatchKVList reports whether term is absent or every value ("key" or
// "key=value") matches labels, as docker's label filter does.
func (f Filters) MatchKVList(term string, labels map[string]string) bool {
	vals, ok := f[term]
	if !ok || len(vals) == 0 {
		return true
	}
	for v := range vals {
		k, want, hasValue := strings.Cut(v, "=")
		got, present := labels[k]
		if !present || (hasValue && got != want) {
			return false
		}
	}
	return true
}

// Validate returns the first term not in accepted, or "".
func (f Filters) Validate(accepted ...string) string {
	for term := range f {
		found := false
		for _, a := range accepted {
			if a == term {
				found = true
				break
			}
		}
		if !found {
			return term
		}
	}
	return ""
}
