package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"slices"
	"time"

	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/api/types/volume"
	"github.com/moby/moby/client/pkg/versions"
)

// InfoOptions is GET /info.
type InfoOptions struct{}

// SystemInfoResult is the daemon's info.
type SystemInfoResult struct{ Info system.Info }

// Info returns daemon-wide information.
func (cli *Client) Info(ctx context.Context, _ InfoOptions) (SystemInfoResult, error) {
	resp, err := cli.get(ctx, "/info", url.Values{}, nil)
	if err != nil {
		ensureReaderClosed(resp)
		return SystemInfoResult{}, err
	}
	info, err := decode[system.Info](resp, nil)
	if err != nil {
		return SystemInfoResult{}, fmt.Errorf("Error reading remote info: %v", err)
	}
	return SystemInfoResult{Info: info}, nil
}

// ServerVersionOptions is GET /version.
type ServerVersionOptions struct{}

// PlatformInfo names the server platform.
type PlatformInfo struct{ Name string }

// ServerVersionResult is the daemon's version information, with the
// fields docker's `version --format '{{.Server.…}}'` reaches.
type ServerVersionResult struct {
	Platform      PlatformInfo
	Version       string
	APIVersion    string `json:"ApiVersion"`
	MinAPIVersion string `json:"MinAPIVersion,omitempty"`
	GitCommit     string
	GoVersion     string
	Os            string
	Arch          string
	KernelVersion string `json:",omitempty"`
	Experimental  bool   `json:",omitempty"`
	BuildTime     string `json:",omitempty"`
	Components    []system.ComponentVersion
}

// ServerVersion returns the daemon's version.
func (cli *Client) ServerVersion(ctx context.Context, _ ServerVersionOptions) (ServerVersionResult, error) {
	v, err := decode[system.VersionResponse](cli.get(ctx, "/version", nil, nil))
	if err != nil {
		return ServerVersionResult{}, err
	}
	return ServerVersionResult{
		Platform:      PlatformInfo{Name: v.Platform.Name},
		Version:       v.Version,
		APIVersion:    v.APIVersion,
		MinAPIVersion: v.MinAPIVersion,
		GitCommit:     v.GitCommit,
		GoVersion:     v.GoVersion,
		Os:            v.Os,
		Arch:          v.Arch,
		KernelVersion: v.KernelVersion,
		Experimental:  v.Experimental, //nolint:staticcheck // deprecated but still sent
		BuildTime:     v.BuildTime,
		Components:    v.Components,
	}, nil
}

// EventsListOptions is GET /events.
type EventsListOptions struct {
	Since   string
	Until   string
	Filters Filters
}

// EventsResult delivers events until an error (io.EOF at the end of --until).
type EventsResult struct {
	Messages <-chan events.Message
	Err      <-chan error
}

// Events streams daemon events; it returns once the request was answered.
func (cli *Client) Events(ctx context.Context, options EventsListOptions) EventsResult {
	messages := make(chan events.Message)
	errs := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		defer close(errs)
		query, err := eventsQuery(options)
		if err != nil {
			close(started)
			errs <- err
			return
		}
		headers := header{}
		headers.Add("Accept", "application/jsonl")
		headers.Add("Accept", "application/x-ndjson;q=0.9")
		headers.Add("Accept", "application/json-seq;q=0.5")
		resp, err := cli.get(ctx, "/events", query, headers)
		if err != nil {
			close(started)
			errs <- err
			return
		}
		defer resp.Body.Close()
		var body io.Reader = resp.Body
		if resp.Header.Get("Content-Type") == "application/json-seq" {
			body = &rsFilterReader{r: body}
		}
		dec := json.NewDecoder(body)
		close(started)
		for {
			if err := ctx.Err(); err != nil {
				errs <- err
				return
			}
			var ev events.Message
			if err := dec.Decode(&ev); err != nil {
				errs <- err
				return
			}
			select {
			case messages <- ev:
			case <-ctx.Done():
				errs <- ctx.Err()
				return
			}
		}
	}()
	<-started
	return EventsResult{Messages: messages, Err: errs}
}

func eventsQuery(options EventsListOptions) (url.Values, error) {
	query := url.Values{}
	now := time.Now()
	if options.Since != "" {
		ts, err := getTimestamp(options.Since, now)
		if err != nil {
			return nil, err
		}
		query.Set("since", ts)
	}
	if options.Until != "" {
		ts, err := getTimestamp(options.Until, now)
		if err != nil {
			return nil, err
		}
		query.Set("until", ts)
	}
	options.Filters.updateURLValues(query)
	return query, nil
}

// rsFilterReader drops the RS (0x1E) record separators of a JSON text
// sequence (RFC 7464), leaving a stream json.Decoder reads.
type rsFilterReader struct{ r io.Reader }

func (f *rsFilterReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		n, err := f.r.Read(p)
		if n == 0 {
			return 0, err
		}
		n = len(slices.DeleteFunc(p[:n], func(b byte) bool { return b == 0x1E }))
		if err != nil {
			if err == io.EOF && n > 0 {
				return n, nil
			}
			return n, err
		}
		if n > 0 {
			return n, nil
		}
	}
}

// DiskUsageOptions is GET /system/df.
type DiskUsageOptions struct {
	Containers bool
	Images     bool
	BuildCache bool
	Volumes    bool
	Verbose    bool
}

// DiskUsageResult is disk usage per object type.
type DiskUsageResult struct {
	Containers ContainersDiskUsage
	Images     ImagesDiskUsage
	BuildCache BuildCacheDiskUsage
	Volumes    VolumesDiskUsage
}

// ObjectsDiskUsage is the disk usage of one kind of object; Items only
// with DiskUsageOptions.Verbose (or an API older than 1.52).
type ObjectsDiskUsage[T any] struct {
	ActiveCount, TotalCount, Reclaimable, TotalSize int64
	Items                                           []T
}

// ContainersDiskUsage is the containers' disk usage.
type ContainersDiskUsage = ObjectsDiskUsage[container.Summary]

// ImagesDiskUsage is the images' disk usage.
type ImagesDiskUsage = ObjectsDiskUsage[image.Summary]

// VolumesDiskUsage is the volumes' disk usage.
type VolumesDiskUsage = ObjectsDiskUsage[volume.Volume]

// BuildCacheDiskUsage is the build cache's disk usage.
type BuildCacheDiskUsage = ObjectsDiskUsage[build.CacheRecord]

// legacyDiskUsage is /system/df before API 1.52: plain lists.
type legacyDiskUsage struct {
	LayersSize int64               `json:"LayersSize,omitempty"`
	Images     []image.Summary     `json:"Images,omitzero"`
	Containers []container.Summary `json:"Containers,omitzero"`
	Volumes    []volume.Volume     `json:"Volumes,omitzero"`
	BuildCache []build.CacheRecord `json:"BuildCache,omitzero"`
}

// DiskUsage returns disk usage; for API < 1.52 the totals are computed here
// from the lists, as moby's client does.
func (cli *Client) DiskUsage(ctx context.Context, options DiskUsageOptions) (DiskUsageResult, error) {
	query := url.Values{}
	for _, t := range []struct {
		on  bool
		obj system.DiskUsageObject
	}{
		{options.Containers, system.ContainerObject},
		{options.Images, system.ImageObject},
		{options.Volumes, system.VolumeObject},
		{options.BuildCache, system.BuildCacheObject},
	} {
		if t.on {
			query.Add("type", string(t.obj))
		}
	}
	if options.Verbose {
		query.Set("verbose", "1")
	}
	resp, err := cli.get(ctx, "/system/df", query, nil)
	if err != nil {
		ensureReaderClosed(resp)
		return DiskUsageResult{}, err
	}
	if versions.LessThan(cli.ClientVersion(), "1.52") {
		du, err := decode[legacyDiskUsage](resp, nil)
		if err != nil {
			return DiskUsageResult{}, fmt.Errorf("retrieving disk usage: %v", err)
		}
		return legacyDiskUsageResult(&du), nil
	}
	du, err := decode[system.DiskUsage](resp, nil)
	if err != nil {
		return DiskUsageResult{}, fmt.Errorf("retrieving disk usage: %v", err)
	}
	var r DiskUsageResult
	if u := du.ImageUsage; u != nil {
		r.Images = objectsUsage(options.Verbose, u.ActiveCount, u.TotalCount, u.Reclaimable, u.TotalSize, u.Items)
	}
	if u := du.ContainerUsage; u != nil {
		r.Containers = objectsUsage(options.Verbose, u.ActiveCount, u.TotalCount, u.Reclaimable, u.TotalSize, u.Items)
	}
	if u := du.BuildCacheUsage; u != nil {
		r.BuildCache = objectsUsage(options.Verbose, u.ActiveCount, u.TotalCount, u.Reclaimable, u.TotalSize, u.Items)
	}
	if u := du.VolumeUsage; u != nil {
		r.Volumes = objectsUsage(options.Verbose, u.ActiveCount, u.TotalCount, u.Reclaimable, u.TotalSize, u.Items)
	}
	return r, nil
}

func objectsUsage[T any](verbose bool, active, total, reclaimable, size int64, items []T) ObjectsDiskUsage[T] {
	u := ObjectsDiskUsage[T]{ActiveCount: active, TotalCount: total, Reclaimable: reclaimable, TotalSize: size}
	if verbose {
		u.Items = slices.Clone(items)
	}
	return u
}

func legacyDiskUsageResult(du *legacyDiskUsage) DiskUsageResult {
	var r DiskUsageResult

	r.Images = ImagesDiskUsage{TotalSize: du.LayersSize, TotalCount: int64(len(du.Images)), Items: du.Images}
	for _, img := range du.Images {
		switch {
		case img.Containers < 0:
		case img.Containers > 0:
			r.Images.ActiveCount++
		case img.Size != -1 && img.SharedSize != -1:
			r.Images.Reclaimable += img.Size - img.SharedSize
		}
	}

	r.Containers = ContainersDiskUsage{TotalCount: int64(len(du.Containers)), Items: du.Containers}
	var used int64
	for _, c := range du.Containers {
		r.Containers.TotalSize += c.SizeRw
		switch c.State {
		case container.StateRunning, container.StatePaused, container.StateRestarting:
			r.Containers.ActiveCount++
			used += c.SizeRw
		}
	}
	r.Containers.Reclaimable = r.Containers.TotalSize - used

	r.BuildCache = BuildCacheDiskUsage{TotalCount: int64(len(du.BuildCache)), Items: du.BuildCache}
	used = 0
	for _, b := range du.BuildCache {
		if !b.Shared {
			r.BuildCache.TotalSize += b.Size
		}
		if b.InUse {
			r.BuildCache.ActiveCount++
			if !b.Shared {
				used += b.Size
			}
		}
	}
	r.BuildCache.Reclaimable = r.BuildCache.TotalSize - used

	r.Volumes = VolumesDiskUsage{TotalCount: int64(len(du.Volumes)), Items: du.Volumes}
	used = 0
	for _, v := range du.Volumes {
		if v.UsageData == nil {
			continue
		}
		if v.UsageData.RefCount > 0 {
			r.Volumes.ActiveCount++
			used += v.UsageData.Size
		}
		if v.UsageData.Size > 0 {
			r.Volumes.TotalSize += v.UsageData.Size
		}
	}
	r.Volumes.Reclaimable = r.Volumes.TotalSize - used
	return r
}
