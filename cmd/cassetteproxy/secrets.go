package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/cassetteproxy/cassetteproxy/redact"
)

func secretEnvFlag() cli.Flag {
	return &cli.StringSliceFlag{Name: "secret-env", Usage: "scrub the value of environment variable `NAME` wherever it appears (repeatable; names with KEY, TOKEN, SECRET, PASSWORD, CREDENTIAL, AUTH or ending in _PAT are scrubbed anyway)"}
}

func secretFileFlag() cli.Flag {
	return &cli.StringSliceFlag{Name: "secret-file", Usage: "scrub every secret listed in `FILE`, one a line, wherever it appears (repeatable)"}
}

// secretValues are the values redaction scrubs wherever they appear: those
// of env (KEY=VALUE) whose names read like credentials, of --secret-env
// NAME, and the lines of --secret-file FILE. redact ignores values shorter
// than 8 bytes.
func secretValues(c *cli.Context, env []string) ([]string, error) {
	var vals []string
	env = append(env, c.StringSlice("env")...) // run --env KEY=VALUE: the child gets them too
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && redact.SecretEnvName(k) && v != "" {
			vals = append(vals, v)
		}
	}
	if pw := runsDBPassword(c); pw != "" {
		vals = append(vals, pw)
	}
	for _, name := range c.StringSlice("secret-env") {
		v, ok := os.LookupEnv(name)
		if !ok {
			return nil, fmt.Errorf("--secret-env %s: no such variable in the environment (set it, or leave the flag out)", name)
		}
		if v != "" {
			vals = append(vals, v)
		}
	}
	for _, path := range c.StringSlice("secret-file") {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("--secret-file %s: %v (give a readable file with one secret a line)", path, unwrapPathError(err))
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			if line := strings.TrimSpace(sc.Text()); line != "" {
				vals = append(vals, line)
			}
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("--secret-file %s: %v (give a text file with one secret a line)", path, err)
		}
	}
	return vals, nil
}

func unwrapPathError(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
