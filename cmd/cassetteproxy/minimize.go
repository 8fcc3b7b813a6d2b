package main

import "github.com/urfave/cli/v2"

func minimizeCommand() *cli.Command {
	return &cli.Command{Name: "minimize", Hidden: true}
}
