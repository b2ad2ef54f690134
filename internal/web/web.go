// Package web holds the browser side that the binary serves: herald.js
// (the classic script that sets window.Herald) and herald.mjs (the same
// client as an ES module), and the Laravel Echo plugin herald-echo.js
// (sets window.HeraldEcho) and herald-echo.mjs. The .mjs files are the
// sources; the .js files are generated from them by build.mjs and checked by
// scripts/test.
//
// The files are embedded, so a page can load the client from the Herald
// it connects to, with no build step and no CDN.
package web

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"net/http"
)

//go:embed herald.js herald.mjs herald-echo.js herald-echo.mjs
var files embed.FS

// asset is one served file with its validator.
type asset struct {
	body []byte
	etag string
}

var assets = func() map[string]asset {
	m := map[string]asset{}
	for _, name := range []string{"herald.js", "herald.mjs", "herald-echo.js", "herald-echo.mjs"} {
		b, err := files.ReadFile(name)
		if err != nil {
			panic(err) // embedded above: cannot happen
		}
		sum := sha256.Sum256(b)
		m["/"+name] = asset{body: b, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
	}
	return m
}()

// Has reports whether name ("/herald.js") is a served file.
func Has(name string) bool {
	_, ok := assets[name]
	return ok
}

// Serve answers GET or HEAD of the file name ("/herald.js"). Any origin
// may load it (a module script from another origin needs CORS); caches
// revalidate it every five minutes, by its ETag.
func Serve(w http.ResponseWriter, r *http.Request, name string) {
	a, ok := assets[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	h.Set("Content-Type", "text/javascript; charset=utf-8")
	h.Set("Cache-Control", "public, max-age=300")
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("ETag", a.etag)
	if r.Header.Get("If-None-Match") == a.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(a.body)
}
