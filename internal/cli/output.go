package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
)

// out writes user-facing output: coloured on a terminal, plain otherwise.
type out struct {
	w     io.Writer
	color bool
}

func newOut(w io.Writer) *out {
	return &out{w: w, color: isTerminal(w) && os.Getenv("NO_COLOR") == ""}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

const (
	red    = "31"
	green  = "32"
	yellow = "33"
	dim    = "2"
	bold   = "1"
)

func (o *out) paint(code, s string) string {
	if !o.color {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

func (o *out) printf(format string, args ...any) { fmt.Fprintf(o.w, format, args...) }

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
