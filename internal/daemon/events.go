package daemon

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/events"

	"github.com/berth-dev/berth/internal/api/backend"
)

var (
	errInvalid  = errdefs.ErrInvalidArgument
	errConflict = errdefs.ErrConflict
)

// eventBus keeps the last events for `events --since` and fans live ones
// out to subscribers. A slow subscriber loses events rather than blocking
// the daemon.
type eventBus struct {
	mu     sync.Mutex
	ring   []events.Message
	next   int
	full   bool
	subs   map[chan events.Message]struct{}
	closed bool
}

const eventRing = 1024

func newEventBus() *eventBus {
	return &eventBus{ring: make([]events.Message, eventRing), subs: map[chan events.Message]struct{}{}}
}

func (b *eventBus) publish(m events.Message) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.ring[b.next] = m
	b.next = (b.next + 1) % eventRing
	if b.next == 0 {
		b.full = true
	}
	for ch := range b.subs {
		select {
		case ch <- m:
		default:
		}
	}
}

func (b *eventBus) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for ch := range b.subs {
		close(ch)
	}
	b.subs = nil
}

// subscribe returns the recorded events since `since` and a live channel.
func (b *eventBus) subscribe(since time.Time) ([]events.Message, chan events.Message) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var past []events.Message
	if !since.IsZero() {
		n := b.next
		start := 0
		if b.full {
			n = eventRing
			start = b.next
		}
		for i := 0; i < n; i++ {
			m := b.ring[(start+i)%eventRing]
			if m.TimeNano >= since.UnixNano() {
				past = append(past, m)
			}
		}
	}
	ch := make(chan events.Message, 256)
	if b.closed {
		close(ch)
		return past, ch
	}
	b.subs[ch] = struct{}{}
	return past, ch
}

func (b *eventBus) unsubscribe(ch chan events.Message) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.subs[ch]; ok {
		delete(b.subs, ch)
		close(ch)
	}
}

// containerEvent publishes a container event with docker's attributes.
func (d *Daemon) containerEvent(c *Container, action events.Action, extra map[string]string) {
	attrs := map[string]string{"name": strings.TrimPrefix(c.Name, "/"), "image": c.ImageName}
	if c.Config != nil {
		for k, v := range c.Config.Labels {
			attrs[k] = v
		}
	}
	for k, v := range extra {
		attrs[k] = v
	}
	d.publish(events.ContainerEventType, action, c.ID, attrs)
}

func (d *Daemon) publish(typ events.Type, action events.Action, id string, attrs map[string]string) {
	now := time.Now()
	d.events.publish(events.Message{
		Type:     typ,
		Action:   action,
		Actor:    events.Actor{ID: id, Attributes: attrs},
		Scope:    "local",
		Time:     now.Unix(),
		TimeNano: now.UnixNano(),
	})
}

// SystemEvents implements backend.SystemBackend.
func (d *Daemon) SystemEvents(ctx context.Context, opts backend.EventsOptions) (<-chan events.Message, error) {
	past, live := d.events.subscribe(opts.Since)
	out := make(chan events.Message, 64)
	go func() {
		defer close(out)
		defer d.events.unsubscribe(live)
		for _, m := range past {
			select {
			case out <- m:
			case <-ctx.Done():
				return
			}
		}
		// An until already past asks for the replay only: end here, as
		// the API layer expects (docker events --until <past> returns).
		if !opts.Until.IsZero() && !opts.Until.After(time.Now()) {
			return
		}
		for {
			select {
			case m, ok := <-live:
				if !ok {
					return
				}
				select {
				case out <- m:
				case <-ctx.Done():
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}
