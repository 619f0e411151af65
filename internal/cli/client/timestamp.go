package client

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// getTimestamp turns a --since/--until value (duration like "42m", RFC 3339
// date or time, or unix seconds[.nanos]) into the "seconds.nanos" string the
// API takes, relative to reference — the same rules as docker's CLI.
func getTimestamp(value string, reference time.Time) (string, error) {
	if d, err := time.ParseDuration(value); value != "0" && err == nil {
		return strconv.FormatInt(reference.Add(-d).Unix(), 10), nil
	}
	// No zone and not a "2006-01-02-07:00" date: the local zone applies.
	inLocation := !strings.ContainsAny(value, "zZ+") && strings.Count(value, "-") != 3
	var format string
	switch {
	case strings.Contains(value, "."):
		format = time.RFC3339Nano
		if inLocation {
			format = "2006-01-02T15:04:05.999999999"
		}
	case strings.Contains(value, "T"):
		colons := strings.Count(value, ":")
		// A "-07:00" zone holds a colon of its own.
		if !inLocation && !strings.ContainsAny(value, "zZ") && colons > 0 {
			colons--
		}
		zone := "Z07:00"
		if inLocation {
			zone = ""
		}
		switch colons {
		case 0:
			format = "2006-01-02T15" + zone
		case 1:
			format = "2006-01-02T15:04" + zone
		default:
			format = "2006-01-02T15:04:05" + zone
		}
	case inLocation:
		format = "2006-01-02"
	default:
		format = "2006-01-02Z07:00"
	}
	var t time.Time
	var err error
	if inLocation {
		t, err = time.ParseInLocation(format, value, time.FixedZone(reference.Zone()))
	} else {
		t, err = time.Parse(format, value)
	}
	if err != nil {
		if strings.Contains(value, "-") {
			return "", err
		}
		if err := checkUnixTimestamp(value); err != nil {
			return "", fmt.Errorf("failed to parse value as time or duration: %q", value)
		}
		return value, nil // already seconds[.nanos]
	}
	return fmt.Sprintf("%d.%09d", t.Unix(), int64(t.Nanosecond())), nil
}

func checkUnixTimestamp(value string) error {
	s, n, ok := strings.Cut(value, ".")
	if _, err := strconv.ParseInt(s, 10, 64); err != nil {
		return err
	}
	if !ok {
		return nil
	}
	_, err := strconv.ParseInt(n, 10, 64)
	return err
}
