package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/cassetteproxy/cassetteproxy/proxy"
)

func caCommand() *cli.Command {
	return &cli.Command{
		Name:  "ca",
		Usage: "the local CA that signs intercepted hosts' certificates",
		Subcommands: []*cli.Command{
			{
				Name:  "path",
				Usage: "print the CA certificate's path (created on first use)",
				Action: func(c *cli.Context) error {
					ca, err := proxy.LoadOrCreateCA(globalString(c, "home"))
					if err != nil {
						return err
					}
					fmt.Fprintln(c.App.Writer, ca.CertPath)
					return nil
				},
			},
			{
				Name:  "bundle",
				Usage: "write system roots plus the CA to one PEM file and print its path",
				Action: func(c *cli.Context) error {
					ca, err := proxy.LoadOrCreateCA(globalString(c, "home"))
					if err != nil {
						return err
					}
					path, err := ca.WriteBundle()
					if err != nil {
						return err
					}
					fmt.Fprintln(c.App.Writer, path)
					return nil
				},
			},
		},
	}
}
