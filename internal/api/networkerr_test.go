package api_test

import "testing"

// An unparsable subnet, range or gateway gets dockerd's words, not Go's.
func TestNetworkCreateBadAddressesInDockersWords(t *testing.T) {
	e := newEnv(t)
	for body, want := range map[string]string{
		`{"Name":"n","IPAM":{"Config":[{"Subnet":"10.1.2.300/24"}]}}`:                       "Invalid subnet 10.1.2.300/24 : invalid CIDR address: 10.1.2.300/24",
		`{"Name":"n","IPAM":{"Config":[{"Subnet":"10.1.2.0/24","IPRange":"10.1.2.0/40"}]}}`: "invalid CIDR address: 10.1.2.0/40",
		`{"Name":"n","IPAM":{"Config":[{"Subnet":"10.1.2.0/24","Gateway":"10.1.2.300"}]}}`:  "no matching subnet for gateway 10.1.2.300",
		`{"Name":"n","IPAM":`: "invalid JSON: unexpected EOF",
	} {
		code, _, b := e.raw(t, "POST", "/v1.41/networks/create", body)
		if code != 400 || message(t, b) != want {
			t.Errorf("%s: %d %s, want 400 %q", body, code, b, want)
		}
	}
}
