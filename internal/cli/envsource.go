package cli

import (
	"net"
	"os"

	"github.com/herald-ws/herald/internal/envfile"
)

// envLookup returns the variables as Laravel's env() sees them: the
// process environment wins, then the .env file at path (when path is not
// empty), with ${NAME} interpolated.
func envLookup(path string) (func(string) string, error) {
	vals := map[string]string{}
	if path != "" {
		f, err := envfile.ParseFile(path)
		if err != nil {
			return nil, err
		}
		vals = f.Effective(os.LookupEnv)
	}
	return func(k string) string {
		if v, ok := vals[k]; ok {
			return v
		}
		return os.Getenv(k)
	}, nil
}

// fill sets each empty *dst to the variable named next to it.
func fill(env func(string) string, pairs map[*string]string) {
	for dst, name := range pairs {
		if *dst == "" {
			*dst = env(name)
		}
	}
}

// clientURL is where Laravel's reverb connection and Echo reach the
// server: REVERB_SCHEME://REVERB_HOST:REVERB_PORT, with Laravel's defaults
// (https, 443), as ws:// or wss://; "" without REVERB_HOST.
func clientURL(env func(string) string) string {
	host := env("REVERB_HOST")
	if host == "" {
		return ""
	}
	scheme, port := env("REVERB_SCHEME"), env("REVERB_PORT")
	if scheme == "" {
		scheme = "https"
	}
	if port == "" {
		port = "443"
	}
	ws := "wss"
	if scheme == "http" {
		ws = "ws"
	}
	return ws + "://" + net.JoinHostPort(host, port)
}
