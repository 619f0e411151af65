package archive

import (
	"archive/tar"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestHostileLayers: each layer must be rejected with the offending entry
// named, and nothing may appear outside the target directory: a sentinel
// directory beside it stays empty and a victim file keeps its single link
// and its content.
func TestHostileLayers(t *testing.T) {
	cases := []struct {
		name  string
		entry string // the entry the error must name
		ents  func(outside, victim string) []ent
		opts  ApplyOptions
	}{
		{"dotdot file", "../outside/evil", func(o, v string) []ent { return []ent{file("../outside/evil", "x")} }, ApplyOptions{}},
		{"dotdot inside path", "a/../../outside/evil", func(o, v string) []ent { return []ent{file("a/../../outside/evil", "x")} }, ApplyOptions{}},
		{"dotdot dir", "../outside/d/", func(o, v string) []ent { return []ent{dir("../outside/d/")} }, ApplyOptions{}},
		{"relative symlink escaping", "l", func(o, v string) []ent { return []ent{symlink("l", "../outside")} }, ApplyOptions{}},
		{"deep relative symlink escaping", "a/b/l", func(o, v string) []ent { return []ent{dir("a/"), dir("a/b/"), symlink("a/b/l", "../../../outside")} }, ApplyOptions{}},
		{"file through absolute symlink", "l/evil", func(o, v string) []ent { return []ent{symlink("l", o), file("l/evil", "x")} }, ApplyOptions{}},
		{"file through symlink to /", "l/" + "outside/evil", func(o, v string) []ent {
			return []ent{symlink("l", filepath.Dir(o)), file("l/outside/evil", "x")}
		}, ApplyOptions{}},
		{"dir through symlink", "l/sub/", func(o, v string) []ent { return []ent{symlink("l", o), dir("l/sub/")} }, ApplyOptions{}},
		{"dir swapped for symlink then written through", "d/f2", func(o, v string) []ent {
			return []ent{dir("d/"), file("d/f1", "ok"), symlink("d", o), file("d/f2", "x")}
		}, ApplyOptions{}},
		{"whiteout through symlink", "l/.wh.x", func(o, v string) []ent { return []ent{symlink("l", o), file("l/.wh.x", "")} }, ApplyOptions{Whiteout: Native}},
		{"opaque through symlink", "l/.wh..wh..opq", func(o, v string) []ent { return []ent{symlink("l", o), file("l/.wh..wh..opq", "")} }, ApplyOptions{Whiteout: Native}},
		{"hard link outside", "h", func(o, v string) []ent { return []ent{hardlink("h", "../victim/file")} }, ApplyOptions{}},
		{"hard link through symlink", "h", func(o, v string) []ent {
			return []ent{symlink("l", filepath.Dir(v)), hardlink("h", "l/"+filepath.Base(v))}
		}, ApplyOptions{}},
		{"hard link to absolute host path", "h", func(o, v string) []ent { return []ent{hardlink("h", v)} }, ApplyOptions{}},
		{"hard link via symlink in lower copy-up", "h", func(o, v string) []ent {
			return []ent{hardlink("h", "lowerlink/"+filepath.Base(v))}
		}, ApplyOptions{Whiteout: Overlay}},
		{"huge declared size", "big", func(o, v string) []ent {
			return []ent{{h: tar.Header{Name: "big", Size: 1 << 40}, body: ""}}
		}, ApplyOptions{MaxSize: 1 << 20}},
		{"bad whiteout name", ".wh..", func(o, v string) []ent { return []ent{file(".wh..", "")} }, ApplyOptions{}},
		{"non-dir root", ".", func(o, v string) []ent { return []ent{file(".", "x")} }, ApplyOptions{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			base := t.TempDir()
			root := filepath.Join(base, "root")
			outside := filepath.Join(base, "outside")
			victimDir := filepath.Join(base, "victim")
			lower := filepath.Join(base, "lower")
			for _, d := range []string{root, outside, victimDir, lower} {
				if err := os.Mkdir(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			victim := filepath.Join(victimDir, "file")
			if err := os.WriteFile(victim, []byte("precious"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(victimDir, filepath.Join(lower, "lowerlink")); err != nil {
				t.Fatal(err)
			}
			o := c.opts
			if o.Whiteout == Overlay {
				o.Parents = []string{lower}
			}
			data := mkTarLoose(t, c.ents(outside, victim)...)
			_, err := apply(t, root, data, o)
			if err == nil {
				t.Fatal("hostile layer accepted")
			}
			t.Log(err)
			if !strings.Contains(err.Error(), `"`+c.entry+`"`) {
				t.Errorf("error does not name entry %q: %v", c.entry, err)
			}
			if names, _ := os.ReadDir(outside); len(names) != 0 {
				t.Errorf("written outside the root: %v", names)
			}
			var st = lstat(t, victim)
			if b, _ := os.ReadFile(victim); string(b) != "precious" || st.Nlink != 1 {
				t.Errorf("victim touched: %q nlink %d", b, st.Nlink)
			}
			if names, _ := os.ReadDir(base); len(names) != 4 {
				t.Errorf("new entries beside the root: %v", names)
			}
		})
	}
}

// mkTarLoose writes headers whose declared size exceeds the body (the tar
// writer would refuse), cutting the stream after the header.
func mkTarLoose(t *testing.T, ents ...ent) []byte {
	var fixed []ent
	var big *ent
	for i := range ents {
		if ents[i].h.Size > int64(len(ents[i].body)) {
			big = &ents[i]
			break
		}
		fixed = append(fixed, ents[i])
	}
	data := mkTar(t, fixed...)
	if big == nil {
		return data
	}
	data = data[:len(data)-1024] // drop the trailer
	hdr := mkTar(t, ent{h: big.h}.withSize(0))
	h := hdr[:512]
	// Patch the size field (octal, bytes 124..135) to the huge value.
	copy(h[124:136], []byte("20000000000\x00"))
	sum := 0
	copy(h[148:156], []byte("        "))
	for _, b := range h {
		sum += int(b)
	}
	copy(h[148:156], []byte(padOctal(sum)))
	return append(data, h...)
}

func (e ent) withSize(n int64) ent { e.h.Size = n; return e }

func padOctal(n int) string {
	return fmt.Sprintf("%06o\x00 ", n)
}
