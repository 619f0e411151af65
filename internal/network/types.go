package network

import (
	"net/netip"
	"time"
)

// Network is one bridge network as berth persists it and the API shows it.
type Network struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Driver     string            `json:"driver"` // always "bridge"
	Created    time.Time         `json:"created"`
	Bridge     string            `json:"bridge"` // Linux bridge device
	Internal   bool              `json:"internal,omitempty"`
	EnableIPv6 bool              `json:"enableIPv6,omitempty"`
	Default    bool              `json:"default,omitempty"` // the docker "bridge" network: no DNS, no aliases, no --ip
	MTU        int               `json:"mtu,omitempty"`
	Subnets    []Subnet          `json:"subnets"`
	Labels     map[string]string `json:"labels,omitempty"`
	Options    map[string]string `json:"options,omitempty"`
}

// Subnet is one IPAM pool of a network (docker's IPAMConfig entry).
type Subnet struct {
	Subnet  netip.Prefix `json:"subnet"`
	Gateway netip.Addr   `json:"gateway"`
	IPRange netip.Prefix `json:"ipRange,omitzero"` // allocate from here only; zero → whole subnet
}

// CreateOptions is a network create request (docker network create).
type CreateOptions struct {
	Name     string
	Driver   string // "" or "bridge"
	Internal bool
	IPv6     bool
	// Subnets as given by the user; Gateway and IPRange may be empty. With no
	// IPv4 subnet one is taken from the default pools.
	Subnets []SubnetRequest
	Labels  map[string]string
	// Options: com.docker.network.bridge.name, com.docker.network.driver.mtu,
	// com.docker.network.bridge.enable_ip_masquerade (others are kept and shown).
	Options map[string]string
}

// SubnetRequest is one --subnet/--gateway/--ip-range triple, unparsed.
type SubnetRequest struct {
	Subnet, Gateway, IPRange string
}

// PortBinding publishes one container port. HostPort 0 picks a free port
// from the ephemeral range; HostPort..HostPortEnd picks the first free port
// of that range (docker's "-p 8000-8010:80").
type PortBinding struct {
	Proto         string     `json:"proto"` // "tcp" (default) or "udp"
	ContainerPort uint16     `json:"containerPort"`
	HostIP        netip.Addr `json:"hostIP,omitzero"` // zero → every host address
	HostPort      uint16     `json:"hostPort"`
	HostPortEnd   uint16     `json:"hostPortEnd,omitempty"`
}

// Link is a legacy --link: Alias resolves to the container named Name.
type Link struct {
	Name  string `json:"name"`
	Alias string `json:"alias"`
}

// Endpoint is a container's attachment request (Connect).
type Endpoint struct {
	ContainerID string
	Name        string // container name without the leading "/"
	Hostname    string
	Aliases     []string // --network-alias (user networks only)
	NetnsPath   string
	IPv4, IPv6  string // requested address (--ip, --ip6) or ""
	Ports       []PortBinding
	Links       []Link
	DNS         []string // --dns: upstreams of the embedded DNS server
}

// EndpointInfo is what Connect returns and Endpoints lists: the container's
// side of the attachment.
type EndpointInfo struct {
	ID          string        `json:"id"` // docker's EndpointID
	NetworkID   string        `json:"networkID"`
	ContainerID string        `json:"containerID"`
	Name        string        `json:"name"`
	Aliases     []string      `json:"aliases,omitempty"`
	IfName      string        `json:"ifName"`   // inside the container: eth0, eth1…
	HostVeth    string        `json:"hostVeth"` // the host end
	MAC         string        `json:"mac"`
	IPv4        netip.Prefix  `json:"ipv4,omitzero"`
	Gateway     netip.Addr    `json:"gateway,omitzero"`
	IPv6        netip.Prefix  `json:"ipv6,omitzero"`
	Gateway6    netip.Addr    `json:"gateway6,omitzero"`
	Ports       []PortBinding `json:"ports,omitempty"` // HostPort resolved
	Links       []Link        `json:"links,omitempty"`
	NetnsPath   string        `json:"netnsPath"`
	DNS         []string      `json:"dns,omitempty"`
	Hostname    string        `json:"hostname,omitempty"`
	DefaultGW   bool          `json:"defaultGW,omitempty"` // holds the container's default route
}
