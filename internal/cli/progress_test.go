package cli

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/client/pkg/jsonmessage"
)

// A stream with every kind of message the renderer distinguishes.
const syntheticStream = `{"status":"Pulling from library/busybox","id":"latest"}
{"status":"Pulling fs layer","id":"aaaaaaaaaaaa"}
{"status":"Waiting","id":"bbbbbbbbbbbb"}
{"status":"Downloading","progressDetail":{"current":1024,"total":4096},"id":"aaaaaaaaaaaa"}
{"status":"Downloading","progressDetail":{"current":5000,"total":4096},"id":"bbbbbbbbbbbb"}
{"status":"Extracting","progressDetail":{"current":3,"total":9,"units":"files"},"id":"aaaaaaaaaaaa"}
{"status":"Extracting","progressDetail":{"current":12,"total":9,"units":"files"},"id":"bbbbbbbbbbbb"}
{"status":"Extracting","progressDetail":{"current":7,"units":"files"},"id":"cccccccccccc"}
{"status":"Extracting","progressDetail":{"current":70000},"id":"cccccccccccc"}
{"status":"Hidden","progressDetail":{"current":1,"total":2,"hidecounts":true},"id":"aaaaaaaaaaaa"}
{"status":"Empty","progressDetail":{},"id":"aaaaaaaaaaaa"}
{"status":"Pull complete","id":"aaaaaaaaaaaa"}
{"aux":{"ID":"sha256:1234"}}
{"stream":"Loaded image: busybox:latest\n"}
{"status":"Digest: sha256:abcd"}
{"status":"Downloading","progressDetail":{"current":10,"total":100},"id":"dddddddddddd"}
{"status":"Status: Downloaded newer image for busybox:latest"}
`

func TestProgressMatchesMobyJSONMessage(t *testing.T) {
	recorded, err := os.ReadFile("testdata/progress-pull-debian.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	streams := map[string]string{
		"synthetic": syntheticStream,
		// berth's own pull of debian:bookworm from the local registry
		"recorded pull": string(recorded),
		"error":         strings.Join(strings.Split(syntheticStream, "\n")[:6], "\n") + "\n" + `{"errorDetail":{"code":404,"message":"manifest unknown"},"error":"manifest unknown"}` + "\n" + `{"status":"never shown"}`,
		"error no code": `{"status":"a"}` + "\n" + `{"errorDetail":{"message":"boom"},"error":"boom"}`,
		"bad json":      `{"status":"a"}` + "\n" + `{"status":`,
	}
	for name, stream := range streams {
		for _, isTerm := range []bool{false, true} {
			var want, got bytes.Buffer
			// fd 1<<20 is no terminal: both use width 200.
			wantErr := jsonmessage.DisplayJSONMessagesStream(strings.NewReader(stream), &want, 1<<20, isTerm, nil)
			gotErr := displayJSONMessages(strings.NewReader(stream), &got, 1<<20, isTerm)
			if got.String() != want.String() {
				t.Errorf("%s (terminal %v):\ngot  %q\nwant %q", name, isTerm, got.String(), want.String())
			}
			if (gotErr == nil) != (wantErr == nil) || (gotErr != nil && gotErr.Error() != wantErr.Error()) {
				t.Errorf("%s (terminal %v): error %v, want %v", name, isTerm, gotErr, wantErr)
			}
			for _, class := range []error{cerrdefs.ErrNotFound, cerrdefs.ErrInvalidArgument, cerrdefs.ErrUnknown, cerrdefs.ErrInternal} {
				if errors.Is(gotErr, class) != errors.Is(wantErr, class) {
					t.Errorf("%s: errors.Is(%v, %v) = %v, moby's %v", name, gotErr, class, errors.Is(gotErr, class), errors.Is(wantErr, class))
				}
			}
		}
	}
	if err := displayJSONMessages(strings.NewReader(streams["error"]), &bytes.Buffer{}, 0, false); !errors.Is(err, cerrdefs.ErrNotFound) || err.Error() != "manifest unknown" {
		t.Errorf("404 in the stream: %v", err)
	}
}

func TestProgressBarMatchesMoby(t *testing.T) {
	for _, p := range []jsonstream.Progress{
		{}, {Current: 1}, {Current: 1 << 20, Total: 1 << 22}, {Current: 5, Total: 3}, {Current: 3, Total: 3},
		{Current: 2, Total: 10, Units: "files"}, {Current: 20, Total: 10, Units: "files"}, {Current: 4, Units: "files"},
		{Current: 1, Total: 2, HideCounts: true},
	} {
		for _, w := range []uint16{0, 40, 80, 111, 200} {
			if got, want := progressBar(p, w), jsonmessage.RenderTUIProgress(p, w); got != want {
				t.Errorf("%+v width %d: got %q, want %q", p, w, got, want)
			}
		}
	}
}

func TestProgressBarNegative(t *testing.T) {
	if got := progressBar(jsonstream.Progress{Current: -4, Total: 10}, 200); !strings.HasPrefix(got, "[>     ") {
		t.Errorf("negative progress: %q", got)
	}
}

func TestProgressTimeLeft(t *testing.T) {
	now := time.Unix(1000, 0)
	progressNow = func() time.Time { return now }
	defer func() { progressNow = time.Now }()
	// 100 bytes in 10 s: 300 more take 30 s.
	got := progressBar(jsonstream.Progress{Current: 100, Total: 400, Start: 990}, 200)
	want := "[============>                                      ]     100B/400B 30s"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := progressBar(jsonstream.Progress{Current: 100, Total: 400, Start: 990}, 50); got != "    100B/400B" {
		t.Errorf("narrow: %q", got)
	}
}
