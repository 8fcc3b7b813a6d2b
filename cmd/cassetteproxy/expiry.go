package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
)

// expiryFlags are serve's, run's, replay's and monitor's: how old a
// recording may be before it is no longer trusted.
func expiryFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "max-recording-age", Usage: "recordings older than `D` (e.g. 30d, 72h) are expired; 0: never [$CASSETTEPROXY_MAX_RECORDING_AGE]",
			EnvVars: []string{"CASSETTEPROXY_MAX_RECORDING_AGE"}},
		&cli.StringFlag{Name: "expired", Usage: "an expired recording is served with a warning (warn) or blocked with reason expired (block) [$CASSETTEPROXY_EXPIRED]",
			EnvVars: []string{"CASSETTEPROXY_EXPIRED"}, Value: "warn"},
	}
}

// expiry reads --max-recording-age and --expired.
func expiry(c *cli.Context) (maxAge time.Duration, block bool, err error) {
	if maxAge, err = parseAge("--max-recording-age", c.String("max-recording-age")); err != nil {
		return 0, false, err
	}
	switch e := c.String("expired"); e {
	case "warn", "":
	case "block":
		block = true
	default:
		return 0, false, fmt.Errorf("unknown --expired %q: use warn or block", e)
	}
	return maxAge, block, nil
}

// parseAge is parseSeconds that also takes days ("30d", "1.5d"), the unit
// recording ages are thought in.
func parseAge(flag, s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	bad := fmt.Errorf("%s %q: not an age (use e.g. 30d, 72h, or a number of seconds)", flag, s)
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseFloat(days, 64)
		if err != nil || n < 0 {
			return 0, bad
		}
		return time.Duration(n * 24 * float64(time.Hour)), nil
	}
	d, err := parseSeconds(flag, s)
	if err != nil {
		return 0, bad
	}
	return d, nil
}
