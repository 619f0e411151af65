package daemon

import (
	"bufio"
	"encoding/json"
	"os"
	"time"
)

// logCursor is how far `logs -f` has passed through a container's log, by
// line timestamp: the monitor stamps lines in order, several lines of one
// read with the same time, so the cursor keeps the last time and how many
// lines with that time were passed. After again (files read a second time
// from a point before the cursor), pass drops lines until it meets the
// first one after the cursor; otherwise it passes every line, so a clock
// stepped back loses nothing.
type logCursor struct {
	last       time.Time
	n          int  // lines passed with time == last
	catchingUp bool // re-reading: drop lines up to the cursor
	seen       int  // while catching up: lines with time == last met
}

// again starts a re-read from before the cursor.
func (c *logCursor) again() { c.catchingUp, c.seen = true, 0 }

// pass reports whether the next line in order, stamped t, is to be passed
// on, and moves the cursor past it.
func (c *logCursor) pass(t time.Time) bool {
	if c.catchingUp {
		switch {
		case t.Before(c.last):
			return false
		case t.Equal(c.last):
			c.seen++
			if c.seen <= c.n {
				return false
			}
		}
		c.catchingUp = false
	}
	if t.Equal(c.last) {
		c.n++
	} else {
		c.last, c.n = t, 1
	}
	return true
}

// catchUpFiles opens, oldest first, the log files from the newest rotated
// one that starts before the cursor (so it holds every line stamped with
// the cursor's time) through the live file. Files rotated away meanwhile
// are skipped.
func catchUpFiles(path string, c *logCursor) []*os.File {
	files := logFiles(path) // oldest first, path last
	start := 0
	for i := len(files) - 2; i >= 0; i-- {
		if t, ok := firstLineTime(files[i]); ok && t.Before(c.last) {
			start = i
			break
		}
	}
	var out []*os.File
	for _, p := range files[start:] {
		if f, err := openLogFile(p); err == nil {
			out = append(out, f)
		}
	}
	return out
}

// firstLineTime is the timestamp of a log file's first line.
func firstLineTime(p string) (time.Time, bool) {
	f, err := openLogFile(p)
	if err != nil {
		return time.Time{}, false
	}
	defer f.Close()
	line, err := bufio.NewReader(logReader(f)).ReadBytes('\n')
	if err != nil && len(line) == 0 {
		return time.Time{}, false
	}
	var l jsonLogLine
	if json.Unmarshal(line, &l) != nil {
		return time.Time{}, false
	}
	return l.Time, true
}
