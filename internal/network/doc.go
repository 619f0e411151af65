// Package network gives containers their network: namespaces (NewNamespace,
// InNamespace), docker-style bridge networks with IPAM kept in the daemon's
// bbolt store, published ports and NAT in berth's own nftables tables, an
// embedded DNS server for user networks, and the /etc/hosts and
// /etc/resolv.conf each container gets.
//
// The daemon holds one Manager. Per container:
//
//	NewNamespace(ctx, <exec-root>/netns/<id>)          also for --network none
//	m.Connect(ctx, "bridge"|<net>, Endpoint{...})       per network; EndpointInfo for inspect
//	m.Hosts / m.ResolvConf / HostGateway               files to bind-mount
//	... the runtime joins the namespace by path ...
//	m.Release(ctx, id); RemoveNamespace(path)           when the container stops
//
// Connect and Disconnect also serve `network connect|disconnect` on running
// containers; CreateNetwork, RemoveNetwork, Get, List, Endpoints and Prune
// serve the network commands. Errors carry errdefs classes and docker's
// wording. See store.go for the bbolt schema, nft.go for the rule set and
// the coexistence with other engines' tables, dns.go for the DNS server.
package network
