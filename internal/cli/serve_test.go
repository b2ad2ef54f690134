package cli

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"testing"

	"github.com/herald-ws/herald/internal/config"
)

// --debug reaches the configuration only when given, and turns the logger
// down to debug whatever log.level says.
func TestServeDebugFlag(t *testing.T) {
	for _, c := range []struct {
		args []string
		want *bool
	}{{nil, nil}, {[]string{"--debug"}, new(true)}, {[]string{"--debug=false"}, new(false)}} {
		fs, so := serveFlags(io.Discard, false)
		if err := fs.Parse(c.args); err != nil {
			t.Fatal(err)
		}
		fs.Visit(func(f *flag.Flag) {
			for _, set := range so.given {
				set(f)
			}
		})
		if got := so.o.Debug; (got == nil) != (c.want == nil) || got != nil && *got != *c.want {
			t.Errorf("%v: Debug override %v, want %v", c.args, got, c.want)
		}
	}
	log := newLogger(config.Log{Level: "warn", Format: "text", Debug: true}, io.Discard)
	if !log.Enabled(context.Background(), slog.LevelDebug) {
		t.Error("log.debug did not enable debug logging")
	}
}
