// Package cli is Herald's command line: subcommands, flags, exit codes and
// user-facing output. cmd/herald calls Main and nothing else.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
)

// Version, when set at build time with -ldflags "-X
// github.com/herald-ws/herald/internal/cli.Version=v1.2.3", replaces the
// module version Go records in the binary.
var Version = ""

const usage = `Herald — a Pusher-protocol broadcasting server for Laravel and the web.

Usage:
  herald [serve] [flags]   run the server (the default command)
  herald restart           ask the running servers to drain and exit (the supervisor restarts them)
  herald demo              a live helpdesk and an Echo dashboard on a local Herald
  herald doctor            check a Laravel .env for broadcasting mistakes
  herald ping [URL]        check a deployment end to end
  herald publish …         publish an event through the HTTP API
  herald keygen            generate an app id, key and secret
  herald bench URL …       load-test a Pusher-compatible server
  herald top URL           live view of a server's /metrics (connections, msgs/s, errors)
  herald version           print the version (also --version)
  herald help              show this help

Run "herald COMMAND --help" for a command's flags.
`

// Main runs the command line and returns the process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	cmd, implicit := "serve", true
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args, implicit = args[0], args[1:], false
	}
	if implicit && len(args) > 0 && (args[0] == "--version" || args[0] == "-version") {
		cmd = "version"
	}
	switch cmd {
	case "serve":
		return serve(args, stdout, stderr, implicit)
	case "restart":
		return restart(args, stdout, stderr)
	case "demo":
		return runDemo(args, stdout, stderr)
	case "doctor":
		return runDoctor(args, stdout, stderr)
	case "ping":
		return ping(args, stdout, stderr)
	case "publish":
		return publish(args, stdout, stderr)
	case "keygen":
		return keygen(args, stdout, stderr)
	case "bench":
		return bench(args, stdout, stderr)
	case "top":
		return top(args, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, versionString())
		return 0
	case "help":
		fs, _ := serveFlags(stdout, true)
		fs.Usage()
		return 0
	}
	fmt.Fprintf(stderr, "herald: unknown command %q\n\n%s", cmd, usage)
	return 2
}

// versionString is the version line: the module version (or the -ldflags
// override), the VCS revision Go stamps into a build from a checkout, and
// the Go version, e.g. "herald (devel) rev 6f276ec (modified) go1.26.8".
func versionString() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = nil
	}
	return formatVersion(Version, bi)
}

func formatVersion(override string, bi *debug.BuildInfo) string {
	v, goVersion, rev, modified := override, runtime.Version(), "", false
	if bi != nil {
		if v == "" {
			v = bi.Main.Version
		}
		if bi.GoVersion != "" {
			goVersion = bi.GoVersion
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	// A build in a checkout gets a pseudo-version made of the commit
	// (v0.0.0-20260101120000-6f276ecd2aba+dirty) that the rev below says
	// more plainly.
	if v == "" || len(rev) >= 12 && strings.Contains(v, "-"+rev[:12]) {
		v = "(devel)"
	}
	out := "herald " + v
	if rev != "" {
		out += " rev " + rev[:min(len(rev), 7)]
		if modified {
			out += " (modified)"
		}
	}
	return out + " " + goVersion
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}

// exitForParse maps a flag parse error to an exit code: 0 for --help.
func exitForParse(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 2
}
