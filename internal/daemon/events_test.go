package daemon

import (
	"context"
	"testing"
	"time"

	"github.com/moby/moby/api/types/events"

	"github.com/berth-dev/berth/internal/api/backend"
)

// docker events --until <past> replays and ends; a future until streams.
func TestSystemEventsUntilPastEnds(t *testing.T) {
	d := &Daemon{events: newEventBus()}
	d.events.publish(events.Message{Type: events.ContainerEventType, Action: events.ActionCreate, Time: time.Now().Unix(), TimeNano: time.Now().UnixNano()})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ch, err := d.SystemEvents(ctx, backend.EventsOptions{Since: time.Now().Add(-time.Minute), Until: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for range ch {
		n++
	}
	if ctx.Err() != nil {
		t.Fatal("the stream did not end after the replay")
	}
	if n != 1 {
		t.Fatalf("replayed %d events, want 1", n)
	}
}
