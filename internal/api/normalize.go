package api

import (
	"encoding/json"
	"net"
	"net/netip"

	"github.com/berth-dev/berth/internal/api/backend"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/api/types/system"
)

// This file is the only place that knows how API versions differ.
//
// Requests: clients speak 1.24…1.41; normalize* turns each into the one
// current shape the backend sees (defaults that changed between versions,
// fields the current types no longer carry).
//
// Responses: the moby/moby/api types are the newest (1.57) shapes, which
// dropped fields that 1.41 clients still read (docker CLI templates,
// docker-compose 1.29, docker-py). shape* puts them back. Since berth
// advertises 1.41 at most, every client gets at least the 1.41 shape.

// legacyCreateFields are create-request fields the current types dropped.
type legacyCreateFields struct {
	MacAddress string `json:",omitempty"` // container-wide MAC, moved to endpoints in 1.44
}

// normalizeCreate builds the backend's create request. raw is the request
// body (for fields the current types dropped).
func normalizeCreate(version string, req container.CreateRequest, raw []byte, name string) backend.ContainerCreateRequest {
	cfg := req.Config
	if cfg == nil {
		cfg = &container.Config{}
	}
	hc := req.HostConfig
	if hc == nil {
		hc = &container.HostConfig{}
	}
	nc := req.NetworkingConfig

	// Before 1.41 the cgroup namespace defaulted to the host's.
	if versionLess(version, "1.41") && hc.CgroupnsMode == "" {
		hc.CgroupnsMode = container.CgroupnsModeHost
	}
	// HealthConfig.StartInterval exists since 1.44; older clients cannot
	// have meant it.
	if versionLess(version, "1.44") && cfg.Healthcheck != nil {
		cfg.Healthcheck.StartInterval = 0
	}
	// Before 1.44 read-only bind mounts were not recursively read-only.
	if versionLess(version, "1.44") {
		for i := range hc.Mounts {
			m := &hc.Mounts[i]
			if m.Type == mount.TypeBind && m.ReadOnly {
				if m.BindOptions == nil {
					m.BindOptions = &mount.BindOptions{}
				}
				if !m.BindOptions.ReadOnlyForceRecursive {
					m.BindOptions.ReadOnlyNonRecursive = true
				}
			}
		}
	}
	// The container-wide MacAddress (before 1.44) becomes the MAC of the
	// endpoint on the container's network.
	var legacy legacyCreateFields
	if len(raw) > 0 && json.Unmarshal(raw, &legacy) == nil && legacy.MacAddress != "" {
		if hw, err := net.ParseMAC(legacy.MacAddress); err == nil {
			if nc == nil {
				nc = &network.NetworkingConfig{}
			}
			if nc.EndpointsConfig == nil {
				nc.EndpointsConfig = map[string]*network.EndpointSettings{}
			}
			netName := string(hc.NetworkMode)
			if netName == "" || netName == "default" {
				netName = "bridge"
			}
			ep := nc.EndpointsConfig[netName]
			if ep == nil {
				ep = &network.EndpointSettings{}
				nc.EndpointsConfig[netName] = ep
			}
			if len(ep.MacAddress) == 0 {
				ep.MacAddress = network.HardwareAddr(hw)
			}
		}
	}
	// Unversioned defaults, applied here so the daemon sees them set.
	// "default" (not "bridge") is what dockerd 20.10 records and shows in
	// inspect; the daemon maps it to the bridge network.
	if hc.NetworkMode == "" {
		hc.NetworkMode = network.NetworkDefault
	}
	if hc.RestartPolicy.Name == "" {
		hc.RestartPolicy.Name = container.RestartPolicyDisabled
	}
	if hc.PidsLimit != nil && *hc.PidsLimit <= 0 {
		hc.PidsLimit = nil // 0 and -1 both mean unlimited
	}
	return backend.ContainerCreateRequest{Name: name, Config: cfg, HostConfig: hc, NetworkingConfig: nc}
}

// normalizeUpdate applies the update request's version differences.
func normalizeUpdate(_ string, u *container.UpdateConfig) {
	if u.PidsLimit != nil && *u.PidsLimit <= 0 {
		zero := int64(0) // 0 means "remove the limit" on update
		u.PidsLimit = &zero
	}
}

// normalizeVolumePrune: before API 1.42 prune removed every unused local
// volume, named ones too; 1.42 made it anonymous-only unless all=true. As
// dockerd does, older clients get the all filter added.
func normalizeVolumePrune(version string, f backend.Filters) {
	if versionLess(version, "1.42") {
		f.Add("all", "true")
	}
}

// networkSettings141 is NetworkSettings as 1.41 clients read it: the
// top-level fields mirror the default ("bridge", or the only) network.
type networkSettings141 struct {
	Bridge                 string
	SandboxID              string
	HairpinMode            bool
	LinkLocalIPv6Address   string
	LinkLocalIPv6PrefixLen int
	Ports                  network.PortMap
	SandboxKey             string
	SecondaryIPAddresses   []any
	SecondaryIPv6Addresses []any
	EndpointID             string
	Gateway                string
	GlobalIPv6Address      string
	GlobalIPv6PrefixLen    int
	IPAddress              string
	IPPrefixLen            int
	IPv6Gateway            string
	MacAddress             string
	Networks               map[string]*network.EndpointSettings
}

type containerInspect141 struct {
	container.InspectResponse
	NetworkSettings *networkSettings141
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// shapeContainerInspect returns the inspect body for version.
func shapeContainerInspect(_ string, c container.InspectResponse) any {
	if c.NetworkSettings == nil {
		return c
	}
	ns := c.NetworkSettings
	out := &networkSettings141{
		SandboxID:  ns.SandboxID,
		SandboxKey: ns.SandboxKey,
		Ports:      ns.Ports,
		Networks:   ns.Networks,
	}
	if out.Networks == nil {
		out.Networks = map[string]*network.EndpointSettings{}
	}
	ep := out.Networks["bridge"]
	if ep == nil && len(out.Networks) == 1 {
		for _, e := range out.Networks {
			ep = e
		}
	}
	if ep != nil {
		out.EndpointID = ep.EndpointID
		out.Gateway = addrString(ep.Gateway)
		out.IPAddress = addrString(ep.IPAddress)
		out.IPPrefixLen = ep.IPPrefixLen
		out.IPv6Gateway = addrString(ep.IPv6Gateway)
		out.GlobalIPv6Address = addrString(ep.GlobalIPv6Address)
		out.GlobalIPv6PrefixLen = ep.GlobalIPv6PrefixLen
		if len(ep.MacAddress) > 0 {
			out.MacAddress = ep.MacAddress.String()
		}
	}
	return containerInspect141{InspectResponse: c, NetworkSettings: out}
}

// event141 carries the status/id/from fields that events had until 1.52.
type event141 struct {
	events.Message
	Status string `json:"status,omitempty"`
	ID     string `json:"id,omitempty"`
	From   string `json:"from,omitempty"`
}

func shapeEvent(_ string, m events.Message) any {
	e := event141{Message: m}
	switch m.Type {
	case events.ContainerEventType:
		e.Status, e.ID, e.From = string(m.Action), m.Actor.ID, m.Actor.Attributes["image"]
	case events.ImageEventType:
		e.Status, e.ID = string(m.Action), m.Actor.ID
	}
	return e
}

// imageSummary141 has VirtualSize, dropped in 1.44.
type imageSummary141 struct {
	image.Summary
	VirtualSize int64
}

func shapeImageList(_ string, list []image.Summary) any {
	out := make([]imageSummary141, len(list))
	for i, s := range list {
		out[i] = imageSummary141{Summary: s, VirtualSize: s.Size}
	}
	return out
}

type imageInspect141 struct {
	image.InspectResponse
	VirtualSize int64
}

func shapeImageInspect(_ string, img image.InspectResponse) any {
	return imageInspect141{InspectResponse: img, VirtualSize: img.Size}
}

// diskUsage141 is GET /system/df before 1.52.
type diskUsage141 struct {
	LayersSize int64
	Images     []imageSummary141
	Containers []container.Summary
	Volumes    []any
	BuildCache []any
}

func shapeDiskUsage(version string, du backend.DiskUsage) any {
	out := diskUsage141{
		LayersSize: du.LayersSize,
		Images:     shapeImageList(version, du.Images).([]imageSummary141),
		Containers: du.Containers,
		Volumes:    []any{},
		BuildCache: []any{},
	}
	if out.Containers == nil {
		out.Containers = []container.Summary{}
	}
	for _, v := range du.Volumes {
		out.Volumes = append(out.Volumes, v)
	}
	return out
}

// logsContentType: before 1.42 logs were announced as a raw stream even
// when multiplexed (clients decide by the container's Tty).
func logsContentType(version string, tty bool) string {
	if !tty && !versionLess(version, "1.42") {
		return mediaMultiplexed
	}
	return mediaRaw
}

// shapeInfo fills what every docker client expects to be set.
func shapeInfo(_ string, info system.Info) system.Info {
	if info.Swarm.LocalNodeState == "" {
		info.Swarm.LocalNodeState = swarm.LocalNodeStateInactive
	}
	if info.OSType == "" {
		info.OSType = "linux"
	}
	return info
}
