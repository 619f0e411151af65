package daemon

import (
	"slices"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	apinet "github.com/moby/moby/api/types/network"
)

func TestParseLink(t *testing.T) {
	for in, want := range map[string][2]string{
		"db":           {"db", "db"},
		"db:alias":     {"db", "alias"},
		"/db:/web/al":  {"db", "al"},
		"/db":          {"db", "db"},
		"abc123:x-y_z": {"abc123", "x-y_z"},
	} {
		n, a, err := parseLink(in)
		if err != nil || n != want[0] || a != want[1] {
			t.Errorf("parseLink(%q) = %q, %q, %v; want %q", in, n, a, err, want)
		}
	}
	for _, bad := range []string{"", "a:b:c", ":x", "x:"} {
		if _, _, err := parseLink(bad); !errdefs.IsInvalidArgument(err) {
			t.Errorf("parseLink(%q): %v, want invalid argument", bad, err)
		}
	}
}

// docker's daemon/links ToEnv gives these variables for this input, in this
// order: tcp ports first; a run of ports gets _START/_END once it ends.
func TestLinkEnvVars(t *testing.T) {
	ports := []apinet.Port{
		apinet.MustParsePort("53/udp"), apinet.MustParsePort("82/tcp"),
		apinet.MustParsePort("80/tcp"), apinet.MustParsePort("81/tcp"), apinet.MustParsePort("90/tcp"),
	}
	got := linkEnvVars("/web/my-db", "172.17.0.3", []string{"FOO=bar", "PATH=/bin", "HOME=/root", "EMPTY=", "NOVALUE"}, ports)
	want := []string{
		"MY_DB_PORT=tcp://172.17.0.3:80",
		"MY_DB_PORT_80_TCP=tcp://172.17.0.3:80", "MY_DB_PORT_80_TCP_ADDR=172.17.0.3", "MY_DB_PORT_80_TCP_PORT=80", "MY_DB_PORT_80_TCP_PROTO=tcp",
		"MY_DB_PORT_81_TCP=tcp://172.17.0.3:81", "MY_DB_PORT_81_TCP_ADDR=172.17.0.3", "MY_DB_PORT_81_TCP_PORT=81", "MY_DB_PORT_81_TCP_PROTO=tcp",
		"MY_DB_PORT_82_TCP=tcp://172.17.0.3:82", "MY_DB_PORT_82_TCP_ADDR=172.17.0.3", "MY_DB_PORT_82_TCP_PORT=82", "MY_DB_PORT_82_TCP_PROTO=tcp",
		"MY_DB_PORT_90_TCP=tcp://172.17.0.3:90", "MY_DB_PORT_90_TCP_ADDR=172.17.0.3", "MY_DB_PORT_90_TCP_PORT=90", "MY_DB_PORT_90_TCP_PROTO=tcp",
		"MY_DB_PORT_80_TCP_START=tcp://172.17.0.3:80", "MY_DB_PORT_80_TCP_PORT_START=80", "MY_DB_PORT_80_TCP_END=tcp://172.17.0.3:82", "MY_DB_PORT_80_TCP_PORT_END=82",
		"MY_DB_PORT_53_UDP=udp://172.17.0.3:53", "MY_DB_PORT_53_UDP_ADDR=172.17.0.3", "MY_DB_PORT_53_UDP_PORT=53", "MY_DB_PORT_53_UDP_PROTO=udp",
		"MY_DB_NAME=/web/my-db",
		"MY_DB_ENV_FOO=bar", "MY_DB_ENV_EMPTY=",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := linkEnvVars("/web/db", "10.0.0.2", nil, nil); !slices.Equal(got, []string{"DB_NAME=/web/db"}) {
		t.Fatalf("no ports: %q", got)
	}
}
