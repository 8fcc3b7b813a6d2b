package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/cassetteproxy/cassetteproxy/isolate"
	"github.com/cassetteproxy/cassetteproxy/proxy"
)

// isolateFlag is --isolate, on run, replay and monitor.
func isolateFlag() cli.Flag {
	return &cli.StringFlag{Name: "isolate", EnvVars: []string{"CASSETTEPROXY_ISOLATE"},
		Usage: "run the command in a network namespace of its own where only the proxy answers (Linux): auto, on or off (default: auto in replay and strict modes, off in record and live) [$CASSETTEPROXY_ISOLATE]"}
}

// isolation decides whether a command run in proxyMode is isolated:
// --isolate on where it is impossible is an error; auto says once why it
// is not, and runs without.
func isolation(c *cli.Context, proxyMode proxy.Mode) (bool, error) {
	m, err := isolate.ParseMode(c.String("isolate"))
	if err != nil {
		return false, err
	}
	m = m.For(proxy.PolicyFor(proxyMode).Dials)
	if m == isolate.Off {
		return false, nil
	}
	unavailable := isolate.Check()
	ok, err := isolate.Choose(m, unavailable)
	if err == nil && !ok {
		fmt.Fprintln(c.App.ErrWriter, "cassetteproxy: "+isolate.Notice(unavailable))
	}
	return ok, err
}

// prewarmIsolation starts finding out whether commands can be isolated
// here (isolate.Check makes one namespace: milliseconds) while the caller
// loads fixtures and opens the store, when --isolate may ask for it.
func prewarmIsolation(c *cli.Context) {
	if m, err := isolate.ParseMode(c.String("isolate")); err == nil && m != isolate.Off {
		go isolate.Check()
	}
}
