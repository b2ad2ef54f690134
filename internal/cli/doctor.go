package cli

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/herald-ws/herald/internal/config"
	"github.com/herald-ws/herald/internal/doctor"
	"github.com/herald-ws/herald/internal/envfile"
)

const doctorUsage = `Usage: herald doctor [--env path/to/.env] [--config herald.yaml] [--url https://app.example.com] [--strict] [--json]

Reads a Laravel .env (and Herald's config) and reports the mistakes that
silently break broadcasting, each with its severity, file and line, why it
matters and the fix. Errors break broadcasting; warnings do not (yet), but
should be fixed before production. Exit code 0 when there is no error
(with --strict: no error and no warning), 1 otherwise (also when the .env
or the config cannot be read), 2 on a usage error.

Flags:
`

func runDoctor(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("herald doctor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, doctorUsage); fs.PrintDefaults() }
	envPath := fs.String("env", ".env", "Laravel .env file")
	cfgPath := fs.String("config", "", "Herald config file to compare with")
	appURL := fs.String("url", "", "where browsers load the app (default: APP_URL)")
	asJSON := fs.Bool("json", false, "print the findings as JSON")
	strict := fs.Bool("strict", false, "exit 1 on warnings too (for CI)")
	if err := fs.Parse(args); err != nil {
		return exitForParse(err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "herald doctor: unexpected argument %q (the file goes after --env)\n", fs.Arg(0))
		return 2
	}
	var o doctor.Options
	o.AppURL = *appURL
	o.Environ = os.LookupEnv
	f, err := envfile.ParseFile(*envPath)
	if err != nil {
		fmt.Fprintf(stderr, "herald doctor: %v\n", err)
		return 1
	}
	o.Env = f
	if *cfgPath != "" {
		// As herald serve --config would see it: the file, then the
		// environment.
		cfg, err := config.Load(config.Options{File: *cfgPath, Environ: os.Environ()})
		if err != nil {
			fmt.Fprintf(stderr, "herald doctor: Herald config:\n%s\n", indent(err.Error()))
			return 1
		}
		o.Config = cfg
	}
	rep := doctor.Check(o)
	if *asJSON {
		_ = writeJSON(stdout, rep)
	} else {
		printDoctor(newOut(stdout), rep)
	}
	if !rep.OK || *strict && !rep.Clean {
		return 1
	}
	return 0
}

func printDoctor(o *out, r *doctor.Report) {
	for _, f := range r.Findings {
		mark, color := "✗", red
		switch f.Severity {
		case doctor.Warning:
			mark, color = "!", yellow
		case doctor.Info:
			mark, color = "i", dim
		}
		loc := f.File
		if f.Line > 0 {
			loc = fmt.Sprintf("%s:%d", f.File, f.Line)
		}
		o.printf("%s %s  %s\n", o.paint(color, mark+" "+f.Severity), o.paint(bold, f.Title), o.paint(dim, loc))
		for _, l := range f.Lines {
			o.printf("    %s\n", l)
		}
		o.printf("    why: %s\n", f.Why)
		o.printf("    fix: %s\n\n", f.Fix)
	}
	color := green
	switch {
	case !r.OK:
		color = red
	case !r.Clean:
		color = yellow
	}
	o.printf("%s\n", o.paint(color, strings.ToUpper(r.Verdict[:1])+r.Verdict[1:]))
}
