package demo

import (
	"bytes"
	"embed"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
)

// The pages are templates (static/*.html: Herald's URL, the app key and the
// CSRF token go in); everything else under static/ is served as is.
//
//go:embed static
var files embed.FS

var (
	static    = must(fs.Sub(files, "static"))
	templates = template.Must(template.ParseFS(static, "*.html"))
)

func must[T any](v T, err error) T {
	if err != nil {
		panic(err) // embedded above: cannot happen
	}
	return v
}

// pageData is what the page templates see.
type pageData struct {
	HeraldURL string // where the page loads herald.js from and connects to
	Key       string // the app key
	CSRF      string // <meta name="csrf-token">
	UserID    int
}

// page answers GET with the template name, rendered for this backend.
func (h *Handler) page(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var b bytes.Buffer
		data := pageData{HeraldURL: strings.TrimSuffix(h.opts.HeraldURL, "/"), Key: h.opts.Key, CSRF: h.csrf, UserID: UserID}
		if err := templates.ExecuteTemplate(&b, name, data); err != nil {
			h.log.Error("demo: page", "page", name, "err", err)
			http.Error(w, "page failed", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store") // it holds the CSRF token
		_, _ = w.Write(b.Bytes())
	}
}

// staticFiles serves static/ but its templates, revalidated at every use
// (a demo is edited and reloaded; embedded files carry no dates).
func staticFiles() http.Handler {
	files := http.FileServerFS(static)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, ".html") || strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}
