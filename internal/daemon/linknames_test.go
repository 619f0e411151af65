package daemon

import (
	"slices"
	"testing"

	"github.com/moby/moby/api/types/container"
)

// The list gives a link child the names its parents' links give it, as
// dockerd's: db linked as db and other into app, app linked as a into web.
func TestAddLinkNames(t *testing.T) {
	d := &Daemon{ctrs: containers{byID: map[string]*Container{}, byName: map[string]string{}}}
	add := func(id, name, mode string, links ...string) {
		d.ctrs.add(&Container{record: record{ID: id, Name: name, HostConfig: &container.HostConfig{NetworkMode: container.NetworkMode(mode), Links: links}}})
	}
	add("dbid", "/db", "")
	add("appid", "/app", "bridge", "dbid:db", "dbid:other")
	add("webid", "/web", "default", "appid:a", "goneid:x")
	// On a user network a link is a DNS alias, not a name.
	add("userid", "/user", "mynet", "db:alias")
	list := []container.Summary{{ID: "webid", Names: []string{"/web"}}, {ID: "appid", Names: []string{"/app"}}, {ID: "dbid", Names: []string{"/db"}}, {ID: "userid", Names: []string{"/user"}}}
	d.addLinkNames(list)
	want := [][]string{{"/web"}, {"/app", "/web/a"}, {"/app/db", "/app/other", "/db"}, {"/user"}}
	for i, s := range list {
		if !slices.Equal(s.Names, want[i]) {
			t.Errorf("%s: Names %q, want %q", s.ID, s.Names, want[i])
		}
	}
}
