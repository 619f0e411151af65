package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/term"

	"github.com/berth-dev/berth/internal/cli/client"
)

// Rendering of the daemon's JSON progress stream (pull, push, load,
// import), as docker's CLI prints it. Written here instead of using moby's
// client/pkg/jsonmessage because that package links net/http (through its
// error classification), which costs every CLI start a few ms.
//
// The stream is a sequence of JSON objects:
//
//	{"status":"Pulling from library/busybox","id":"latest"}
//	{"status":"Downloading","progressDetail":{"current":512,"total":2048},"id":"9ad63333ebc9"}
//	{"stream":"text\n"}                        (printed as is)
//	{"errorDetail":{"code":404,"message":"…"}} (ends the stream with an error)
//	{"aux":{…}}                                (out-of-band: not printed)
//
// On a terminal each id with progress owns one line, updated in place:
//
//	9ad63333ebc9: Downloading [=====>      ]  512B/2.048kB   ◀─ cursor up to the id's line,
//	a1b2c3d4e5f6: Pull complete                                 erase it, rewrite, cursor back down
//
// A message without id or progress starts a new block of lines. Elsewhere
// progress messages are dropped and the rest printed one per line.

const (
	ansiEraseLine = "\x1b[2K"
	ansiCursorUp  = "\x1b[%dA"
	ansiCursorDn  = "\x1b[%dB"
)

// progressNow is the clock of the time-left estimate (tests fix it).
var progressNow = time.Now

// displayJSONMessages renders the stream in to out; fd is out's terminal
// when isTerm. An error in the stream is returned, classified by errdefs
// from its code.
func displayJSONMessages(in io.Reader, out io.Writer, fd uintptr, isTerm bool) error {
	width := uint16(200)
	if isTerm {
		if ws, err := term.GetWinsize(fd); err == nil {
			width = ws.Width
		}
	}
	dec := json.NewDecoder(in)
	ids := map[string]uint{} // id → line in the current block
	for {
		var jm jsonstream.Message
		if err := dec.Decode(&jm); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if jm.Aux != nil {
			continue
		}
		var diff uint
		if jm.ID != "" && jm.Progress != nil {
			line, ok := ids[jm.ID]
			if !ok {
				line = uint(len(ids))
				ids[jm.ID] = line
				if isTerm {
					_, _ = io.WriteString(out, "\n")
				}
			}
			diff = uint(len(ids)) - line
			if isTerm && diff > 0 {
				_, _ = fmt.Fprintf(out, ansiCursorUp, diff)
			}
		} else {
			ids = map[string]uint{}
		}
		err := displayMessage(jm, out, isTerm, width)
		if jm.ID != "" && isTerm && diff > 0 {
			_, _ = fmt.Fprintf(out, ansiCursorDn, diff)
		}
		if err != nil {
			return err
		}
	}
}

// displayMessage prints one message; progress only on a terminal.
func displayMessage(jm jsonstream.Message, out io.Writer, isTerm bool, width uint16) error {
	if jm.Error != nil {
		return client.FromStatusCode(jm.Error, jm.Error.Code)
	}
	endl := ""
	if isTerm && jm.Stream == "" && jm.Progress != nil {
		endl = "\r"
		_, _ = io.WriteString(out, ansiEraseLine+endl)
	} else if jm.Progress != nil && (jm.Progress.Current > 0 || jm.Progress.Total > 0) {
		return nil
	}
	var b strings.Builder
	if jm.ID != "" {
		b.WriteString(jm.ID + ": ")
	}
	switch {
	case jm.Progress != nil && isTerm:
		b.WriteString(jm.Status + " " + progressBar(*jm.Progress, width) + endl)
	case jm.Stream != "":
		b.WriteString(jm.Stream + endl)
	default:
		b.WriteString(jm.Status + endl + "\n")
	}
	_, _ = io.WriteString(out, b.String())
	return nil
}

// progressBar is docker's "[=====>     ]  1.2MB/3.4MB 5s": the bar only on
// terminals wider than 110 columns, the time left wider than 50.
func progressBar(p jsonstream.Progress, width uint16) string {
	if p.Current <= 0 && p.Total <= 0 {
		return ""
	}
	if p.Total <= 0 {
		if p.Units == "" {
			return fmt.Sprintf("%8v", units.HumanSize(float64(p.Current)))
		}
		return fmt.Sprintf("%d %s", p.Current, p.Units)
	}
	percentage := min(int(float64(p.Current)/float64(p.Total)*100)/2, 50)
	var bar, numbers, left string
	if width > 110 {
		// a negative current would make moby's renderer panic
		bar = "[" + strings.Repeat("=", max(percentage, 0)) + ">" + strings.Repeat(" ", max(50-percentage, 0)) + "] "
	}
	switch {
	case p.HideCounts:
	case p.Units == "":
		current := units.HumanSize(float64(p.Current))
		if p.Current > p.Total {
			numbers = fmt.Sprintf("%8v", current)
		} else {
			numbers = fmt.Sprintf("%8v/%v", current, units.HumanSize(float64(p.Total)))
		}
	case p.Current > p.Total:
		numbers = fmt.Sprintf("%d %s", p.Current, p.Units)
	default:
		numbers = fmt.Sprintf("%d/%d %s", p.Current, p.Total, p.Units)
	}
	if width > 50 && p.Current > 0 && p.Start > 0 && percentage < 50 {
		perEntry := progressNow().UTC().Sub(time.Unix(p.Start, 0)) / time.Duration(p.Current)
		left = " " + (time.Duration(p.Total-p.Current) * perEntry).Round(time.Second).String()
	}
	return bar + numbers + left
}
