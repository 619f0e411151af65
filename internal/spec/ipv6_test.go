package spec

import "testing"

// TestIPv6Disabled: as docker, a private network namespace without an IPv6
// network gets net.ipv6.conf.all.disable_ipv6=1 (when the host has IPv6);
// an IPv6 network, the host's or a joined namespace, or the user's own
// --sysctl leave it alone.
func TestIPv6Disabled(t *testing.T) {
	const key = "net.ipv6.conf.all.disable_ipv6"
	for _, tc := range []struct {
		name string
		set  func(o *Options)
		want string // "" = not set
	}{
		{"bridge without IPv6", func(o *Options) {}, "1"},
		{"none", func(o *Options) { o.NetworkMode = "none" }, "1"},
		{"IPv6 network", func(o *Options) { o.IPv6 = true }, ""},
		{"host without IPv6", func(o *Options) { o.Host.IPv6 = false }, ""},
		{"net host", func(o *Options) { o.NetworkMode = "host" }, ""},
		{"user sysctl wins", func(o *Options) { o.Sysctls = map[string]string{key: "0"} }, "0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := baseOpts()
			o.Host.IPv6 = true
			tc.set(o)
			s := mustGen(t, busyboxImage, o)
			if got := s.Linux.Sysctl[key]; got != tc.want {
				t.Fatalf("%s = %q, want %q", key, got, tc.want)
			}
		})
	}
}
