package api

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/netip"

	"github.com/berth-dev/berth/internal/api/backend"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/volume"
)

func (s *Server) networkVolumeRoutes() {
	n, v := s.b.Networks != nil, s.b.Volumes != nil
	s.handle("GET /networks", n, s.networkList)
	s.handle("GET /networks/{$}", n, s.networkList)
	s.handle("GET /networks/{id}", n, s.networkInspect)
	s.handle("POST /networks/create", n, s.networkCreate)
	s.handle("DELETE /networks/{id}", n, s.networkRemove)
	s.handle("POST /networks/prune", n, s.networkPrune)
	s.handle("POST /networks/{id}/connect", n, s.networkConnect)
	s.handle("POST /networks/{id}/disconnect", n, s.networkDisconnect)

	s.handle("GET /volumes", v, s.volumeList)
	s.handle("GET /volumes/{name}", v, s.volumeInspect)
	s.handle("POST /volumes/create", v, s.volumeCreate)
	s.handle("DELETE /volumes/{name}", v, s.volumeRemove)
	s.handle("POST /volumes/prune", v, s.volumePrune)
}

func (s *Server) networkList(w http.ResponseWriter, r *http.Request) error {
	f, err := filtersParam(r)
	if err != nil {
		return err
	}
	if bad := f.Validate("dangling", "driver", "id", "label", "name", "scope", "type"); bad != "" {
		return invalidArg("invalid filter '%s'", bad)
	}
	list, err := s.b.Networks.NetworkList(r.Context(), f)
	if err != nil {
		return err
	}
	if list == nil {
		list = []network.Summary{}
	}
	return writeJSON(w, http.StatusOK, list)
}

func (s *Server) networkInspect(w http.ResponseWriter, r *http.Request) error {
	opts := networkInspectOptions(r)
	n, err := s.b.Networks.NetworkInspect(r.Context(), r.PathValue("id"), opts)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, n)
}

func (s *Server) networkCreate(w http.ResponseWriter, r *http.Request) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return err
	}
	var req network.CreateRequest
	if err := json.NewDecoder(bytes.NewReader(body)).Decode(&req); err != nil && len(bytes.TrimSpace(body)) > 0 {
		if err := badIPAM(body); err != nil {
			return err
		}
		return invalidArg("invalid JSON: %v", err)
	}
	if req.Name == "" {
		return invalidArg("network name cannot be empty") // docker: "invalid name"
	}
	if req.Driver == "" {
		req.Driver = "bridge"
	}
	resp, err := s.b.Networks.NetworkCreate(r.Context(), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, resp)
}

func (s *Server) networkRemove(w http.ResponseWriter, r *http.Request) error {
	if err := s.b.Networks.NetworkRemove(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) networkPrune(w http.ResponseWriter, r *http.Request) error {
	f, err := filtersParam(r)
	if err != nil {
		return err
	}
	rep, err := s.b.Networks.NetworkPrune(r.Context(), f)
	if err != nil {
		return err
	}
	if rep.NetworksDeleted == nil {
		rep.NetworksDeleted = []string{}
	}
	return writeJSON(w, http.StatusOK, rep)
}

func (s *Server) networkConnect(w http.ResponseWriter, r *http.Request) error {
	var req network.ConnectRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if req.Container == "" {
		return invalidArg("container is required")
	}
	if err := s.b.Networks.NetworkConnect(r.Context(), r.PathValue("id"), req); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) networkDisconnect(w http.ResponseWriter, r *http.Request) error {
	var req network.DisconnectRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if req.Container == "" {
		return invalidArg("container is required")
	}
	if err := s.b.Networks.NetworkDisconnect(r.Context(), r.PathValue("id"), req); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) volumeList(w http.ResponseWriter, r *http.Request) error {
	f, err := filtersParam(r)
	if err != nil {
		return err
	}
	if bad := f.Validate("dangling", "driver", "label", "name"); bad != "" {
		return invalidArg("invalid filter '%s'", bad)
	}
	resp, err := s.b.Volumes.VolumeList(r.Context(), f)
	if err != nil {
		return err
	}
	if resp.Volumes == nil {
		resp.Volumes = []volume.Volume{}
	}
	if resp.Warnings == nil {
		resp.Warnings = []string{}
	}
	return writeJSON(w, http.StatusOK, resp)
}

func (s *Server) volumeInspect(w http.ResponseWriter, r *http.Request) error {
	v, err := s.b.Volumes.VolumeInspect(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}

func (s *Server) volumeCreate(w http.ResponseWriter, r *http.Request) error {
	var req volume.CreateRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if req.Driver == "" {
		req.Driver = "local"
	}
	v, err := s.b.Volumes.VolumeCreate(r.Context(), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, v)
}

func (s *Server) volumeRemove(w http.ResponseWriter, r *http.Request) error {
	if err := s.b.Volumes.VolumeRemove(r.Context(), r.PathValue("name"), boolValue(r, "force")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) volumePrune(w http.ResponseWriter, r *http.Request) error {
	f, err := filtersParam(r)
	if err != nil {
		return err
	}
	normalizeVolumePrune(apiVersion(r), f)
	rep, err := s.b.Volumes.VolumePrune(r.Context(), f)
	if err != nil {
		return err
	}
	if rep.VolumesDeleted == nil {
		rep.VolumesDeleted = []string{}
	}
	return writeJSON(w, http.StatusOK, rep)
}

func networkInspectOptions(r *http.Request) backend.NetworkInspectOptions {
	return backend.NetworkInspectOptions{Verbose: boolValue(r, "verbose"), Scope: r.URL.Query().Get("scope")}
}

// badIPAM gives docker's words for an address the typed decode refused
// (the API types parse subnets as netip values, whose errors name Go).
func badIPAM(body []byte) error {
	var loose struct {
		IPAM *struct {
			Config []struct{ Subnet, IPRange, Gateway string }
		}
	}
	if json.Unmarshal(body, &loose) != nil || loose.IPAM == nil {
		return nil
	}
	for _, c := range loose.IPAM.Config {
		if _, err := netip.ParsePrefix(c.Subnet); c.Subnet != "" && err != nil {
			return invalidArg("Invalid subnet %s : invalid CIDR address: %s", c.Subnet, c.Subnet)
		}
		if _, err := netip.ParsePrefix(c.IPRange); c.IPRange != "" && err != nil {
			return invalidArg("invalid CIDR address: %s", c.IPRange)
		}
		if _, err := netip.ParseAddr(c.Gateway); c.Gateway != "" && err != nil {
			return invalidArg("no matching subnet for gateway %s", c.Gateway)
		}
	}
	return nil
}
