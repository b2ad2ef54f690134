package cli

import (
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"math/big"
	"sort"
)

const keygenUsage = `Usage: herald keygen [--json]

Prints a fresh random app id, key (20 hex digits) and secret (40 hex
digits) as Laravel .env lines, ready to paste into the .env that both
Laravel and "herald serve --env" read. Exit code 0.

Flags:
`

// keygen prints a fresh app id, key and secret as Laravel .env lines.
func keygen(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("herald keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, keygenUsage); fs.PrintDefaults() }
	asJSON := fs.Bool("json", false, "print as JSON")
	if err := fs.Parse(args); err != nil {
		return exitForParse(err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "herald keygen: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	id, err := rand.Int(rand.Reader, big.NewInt(900000))
	if err != nil {
		fmt.Fprintln(stderr, "herald keygen:", err)
		return 1
	}
	appID := fmt.Sprint(100000 + id.Int64())
	key, secret := randomHex(10), randomHex(20)
	if *asJSON {
		_ = writeJSON(stdout, map[string]string{"app_id": appID, "key": key, "secret": secret})
		return 0
	}
	fmt.Fprintf(stdout, "REVERB_APP_ID=%s\nREVERB_APP_KEY=%s\nREVERB_APP_SECRET=%s\n", appID, key, secret)
	return 0
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return hex.EncodeToString(b)
}

func sorted(s []string) []string { sort.Strings(s); return s }
