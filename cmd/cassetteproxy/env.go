package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/cassetteproxy/cassetteproxy/proxy"
)

func envCommand() *cli.Command {
	return &cli.Command{
		Name:      "env",
		Usage:     "print export lines that point a shell's clients at a running proxy",
		UsageText: "eval \"$(cassetteproxy env)\"",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "proxy", Usage: "the proxy's `URL`", Value: "http://127.0.0.1:8080"},
		},
		Action: func(c *cli.Context) error {
			ca, err := proxy.LoadOrCreateCA(globalString(c, "home"))
			if err != nil {
				return err
			}
			bundle, err := ca.WriteBundle()
			if err != nil {
				return err
			}
			for _, kv := range proxy.ClientEnv(c.String("proxy"), bundle, ca.CertPath, "") {
				fmt.Fprintf(c.App.Writer, "export %s=%s\n", kv[0], shellQuote(kv[1]))
			}
			return nil
		},
	}
}

// shellQuote quotes a value for POSIX shells.
func shellQuote(s string) string {
	out := []byte{'\''}
	for i := 0; i < len(s); i++ {
		if s[i] == '\'' {
			out = append(out, `'\''`...)
			continue
		}
		out = append(out, s[i])
	}
	return string(append(out, '\''))
}
