package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/cassetteproxy/cassetteproxy/proxy"
)

func emitCommand() *cli.Command {
	return &cli.Command{
		Name:      "emit",
		Usage:     "report an event of the agent's own (checkpoint, artifact, claim, ...) to the run it is inside",
		UsageText: "cassetteproxy emit KIND [NAME] [--data JSON] [--path P] [--ref R] [--artifact-ref R]... [--side-effect \"METHOD URLGLOB\"]...",
		Description: "KIND is one of " + strings.Join(proxy.EventKinds(), ", ") + ". A claim is sent with status done.\n" +
			"Reads CASSETTEPROXY_URL and CASSETTEPROXY_RUN_ID, which run and replay set for the command they run.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "data", Usage: "any `JSON` value to keep with the event"},
			&cli.StringFlag{Name: "path", Usage: "artifact: the `FILE` written (relative to the run's folder)"},
			&cli.StringFlag{Name: "ref", Usage: "artifact or state_ref: a `REF` (row id, message id, URL)"},
			&cli.StringSliceFlag{Name: "artifact-ref", Usage: "claim: an artifact `PATH or REF` behind it (repeatable)"},
			&cli.StringSliceFlag{Name: "side-effect", Usage: "claim: \"`METHOD URLGLOB`\" it says happened (repeatable)"},
		},
		Action: emitAction,
	}
}

func emitAction(c *cli.Context) error {
	args, err := positionals(c)
	if err != nil {
		return err
	}
	if len(args) < 1 || len(args) > 2 {
		return errors.New("emit takes KIND [NAME]: cassetteproxy emit checkpoint fetched --data '{\"issues\": 3}'")
	}
	base, runID := os.Getenv("CASSETTEPROXY_URL"), os.Getenv("CASSETTEPROXY_RUN_ID")
	if base == "" || runID == "" {
		return errors.New("emit: not inside a run (CASSETTEPROXY_URL and CASSETTEPROXY_RUN_ID are not set; cassetteproxy run and replay set them for the command they run)")
	}
	ev := map[string]any{"kind": args[0], "run_id": runID}
	if len(args) == 2 {
		ev["name"] = args[1]
	}
	if d := c.String("data"); d != "" {
		if !json.Valid([]byte(d)) {
			return fmt.Errorf("emit: --data is not JSON: %s", d)
		}
		ev["data"] = json.RawMessage(d)
	}
	for flag, key := range map[string]string{"path": "path", "ref": "ref"} {
		if v := c.String(flag); v != "" {
			ev[key] = v
		}
	}
	for flag, key := range map[string]string{"artifact-ref": "artifact_refs", "side-effect": "side_effects"} {
		if v := c.StringSlice(flag); len(v) > 0 {
			ev[key] = v
		}
	}
	if args[0] == "claim" {
		ev["status"] = "done"
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	if _, err := proxy.PostEvent(context.Background(), base, body); err != nil {
		return fmt.Errorf("emit: %w", err)
	}
	return nil
}
