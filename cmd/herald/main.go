// Command herald is a Pusher-protocol broadcasting server. See README.md.
package main

import (
	"os"

	"github.com/herald-ws/herald/internal/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr)) }
