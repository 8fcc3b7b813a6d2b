// Command cassetteproxy records what AI agents' tools answer and replays it.
// This package only wires: flags, environment, exit codes. The work is done
// in proxy, store, match, redact and fixtures.
package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/cassetteproxy/cassetteproxy/store"
)

// exitError carries an exit code other than 1 (run and replay pass on the
// child's code, or 3 for a verdict that is not passed).
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func main() {
	app := newApp()
	err := app.Run(os.Args)
	if err == nil {
		return
	}
	code := 1
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	// A damaged store says so in one line of its own, however deep the
	// command met it.
	var damaged *store.DamagedError
	if errors.As(err, &damaged) {
		err = damaged
	}
	if msg := err.Error(); msg != "" {
		fmt.Fprintln(os.Stderr, "cassetteproxy: "+msg)
	}
	os.Exit(code)
}

// Global flags. urfave/cli only accepts a flag where it is declared, and
// users type --db after the command name as often as before it, so these
// are declared on the app and on every command; globalString reads
// whichever the user set.
func globalFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "db", Usage: "the store `FILE` [$CASSETTEPROXY_DB]", Value: "./cassettes.db"},
		&cli.StringFlag{Name: "home", Usage: "`DIR` for the CA key and certificate [$CASSETTEPROXY_HOME]", Value: defaultHome()},
		&cli.StringFlag{Name: "runs-db", Usage: "keep run records and fixture histories in PostgreSQL at `URL` (postgres://...) instead of --db [$CASSETTEPROXY_RUNS_DB]"},
		&cli.StringFlag{Name: "log-format", Usage: "text or json [$CASSETTEPROXY_LOG_FORMAT]", Value: "text"},
	}
}

func defaultHome() string {
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".cassetteproxy")
	}
	return ".cassetteproxy"
}

// globalEnv names each global flag's environment variable. They are read
// here rather than through the flags' EnvVars, which would let the
// variable shadow a flag typed on the other side of the command name.
var globalEnv = map[string]string{"db": "CASSETTEPROXY_DB", "home": "CASSETTEPROXY_HOME", "log-format": "CASSETTEPROXY_LOG_FORMAT", "runs-db": runsDBEnv}

// globalPaths are the global flags that name files or folders.
var globalPaths = map[string]bool{"db": true, "home": true}

// globalString is the value of a global flag from wherever it was typed
// (after the command first, then before it), else its environment
// variable, else its default. Paths come back absolute, resolved against
// the caller's folder: they reach children (the CA bundle in
// SSL_CERT_FILE) that run in other folders.
func globalString(c *cli.Context, name string) string {
	v := globalValue(c, name)
	if globalPaths[name] {
		return absPath(v)
	}
	return v
}

func globalValue(c *cli.Context, name string) string {
	for _, ctx := range c.Lineage() {
		for _, set := range ctx.LocalFlagNames() {
			if set == name {
				return ctx.String(name)
			}
		}
	}
	if v := os.Getenv(globalEnv[name]); v != "" {
		return v
	}
	return c.String(name)
}

// absPath is p made absolute against the current folder ("" stays "").
// Only a current folder that no longer exists keeps p as it is; opening it
// then fails with an error naming it.
func absPath(p string) string {
	if p == "" {
		return p
	}
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// absPaths is absPath of each (globs stay globs).
func absPaths(ps []string) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = absPath(p)
	}
	return out
}

func withGlobals(cmds []*cli.Command) []*cli.Command {
	for _, cmd := range cmds {
		cmd.OnUsageError = usageError
		if len(cmd.Subcommands) > 0 {
			withGlobals(cmd.Subcommands)
			cmd.Action = unknownSubcommand
			continue
		}
		cmd.Flags = append(cmd.Flags, globalFlags()...)
	}
	return cmds
}

// usageError turns a flag mistake into the one-line error every other
// failure gets, instead of urfave/cli's help page.
func usageError(c *cli.Context, err error, _ bool) error {
	return fmt.Errorf("%v (see: %s --help)", err, commandPath(c))
}

// unknownSubcommand answers a command group (cassettes, ca, runs) called
// with no subcommand (help) or an unknown one (a one-line error).
func unknownSubcommand(c *cli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("unknown command %q (see: %s --help)", c.Args().First(), commandPath(c))
	}
	return cli.ShowSubcommandHelp(c)
}

// commandPath is the command as typed: "cassetteproxy cassettes ls".
func commandPath(c *cli.Context) string {
	var names []string
	for _, ctx := range c.Lineage() {
		if ctx.Command != nil && ctx.Command.Name != "" && ctx.Command.Name != c.App.Name {
			names = append([]string{ctx.Command.Name}, names...)
		}
	}
	return strings.Join(append([]string{c.App.Name}, names...), " ")
}

func newApp() *cli.App {
	return &cli.App{
		Name:                 "cassetteproxy",
		Usage:                "record what AI agents' tools answer; replay it, and block anything unrecorded",
		Flags:                globalFlags(),
		HideHelpCommand:      true,
		EnableBashCompletion: false,
		ExitErrHandler:       func(*cli.Context, error) {}, // main prints and exits after cleanup
		OnUsageError:         usageError,
		// Without a command: help. With an unknown one: say so, in one line.
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return fmt.Errorf("unknown command %q (see: cassetteproxy --help)", c.Args().First())
			}
			return cli.ShowAppHelp(c)
		},
		Commands: withGlobals([]*cli.Command{
			serveCommand(),
			runCommand(), runsCommand(), emitCommand(),
			envCommand(),
			caCommand(),
			cassettesCommand(),
			exportCommand(), importCommand(), replayCommand(), monitorCommand(),
			minimizeCommand(), rulesCommand(), driftCommand(),
			storeCommand(),
		}),
	}
}
