package daemon

import (
	"context"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"

	"github.com/berth-dev/berth/internal/api/backend"
)

// ContainerRename implements backend.ContainerAdminBackend.
func (d *Daemon) ContainerRename(ctx context.Context, id, newName string) error {
	c, err := d.ctrs.get(id)
	if err != nil {
		return err
	}
	if !validName(newName) {
		return errMsg(errInvalid, "Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", newName)
	}
	newName = "/" + strings.TrimPrefix(newName, "/")
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.Name == newName {
		return errMsg(errInvalid, "Renaming a container with the same name as its current name")
	}
	if err := d.ctrs.reserveName(newName, c.ID); err != nil {
		return err
	}
	old := c.Name
	c.Name = newName
	if err := d.saveRecord(c); err != nil {
		c.Name = old
		d.ctrs.releaseName(newName, c.ID)
		return err
	}
	d.ctrs.releaseName(old, c.ID)
	d.containerEvent(c, events.ActionRename, map[string]string{"oldName": old})
	return nil
}

// ContainerPrune implements backend.ContainerAdminBackend.
func (d *Daemon) ContainerPrune(ctx context.Context, filters backend.Filters) (container.PruneReport, error) {
	if bad := filters.Validate("until", "label", "label!"); bad != "" {
		return container.PruneReport{}, errMsg(errInvalid, "invalid filter '%s'", bad)
	}
	var until time.Time
	for _, v := range filters.Get("until") {
		t, err := parseTimeFilter(v)
		if err != nil {
			return container.PruneReport{}, err
		}
		until = t
	}
	rep := container.PruneReport{ContainersDeleted: []string{}}
	for _, c := range d.ctrs.list() {
		c.mu.Lock()
		ok := !c.State.running() && c.State.Status != container.StateRestarting &&
			filters.MatchKVList("label", c.Config.Labels) && (until.IsZero() || c.Created.Before(until))
		c.mu.Unlock()
		if !ok {
			continue
		}
		rw, _ := d.sizes(ctx, c)
		if err := d.ContainerRemove(ctx, c.ID, backend.RemoveOptions{}); err == nil {
			rep.ContainersDeleted = append(rep.ContainersDeleted, c.ID)
			rep.SpaceReclaimed += uint64(rw)
		}
	}
	return rep, nil
}

func parseTimeFilter(v string) (time.Time, error) {
	if dur, err := time.ParseDuration(v); err == nil {
		return time.Now().Add(-dur), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errMsg(errInvalid, "invalid time filter %q", v)
}
