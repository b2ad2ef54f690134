package web

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestServe(t *testing.T) {
	for _, name := range []string{"/herald.js", "/herald.mjs", "/herald-echo.js", "/herald-echo.mjs"} {
		global := "globalThis.Herald = Herald"
		if strings.HasPrefix(name, "/herald-echo.") {
			global = "globalThis.HeraldEcho = HeraldEcho"
		}
		rec := httptest.NewRecorder()
		Serve(rec, httptest.NewRequest(http.MethodGet, name, nil), name)
		body := rec.Body.String()
		if rec.Code != 200 || rec.Header().Get("Content-Type") != "text/javascript; charset=utf-8" || rec.Header().Get("Access-Control-Allow-Origin") != "*" {
			t.Fatalf("%s: %d %v", name, rec.Code, rec.Header())
		}
		if !strings.Contains(body, "Herald") || strings.HasSuffix(name, ".js") != strings.Contains(body, global) {
			t.Errorf("%s: not the expected file", name)
		}
		again := httptest.NewRequest(http.MethodGet, name, nil)
		again.Header.Set("If-None-Match", rec.Header().Get("ETag"))
		rec2 := httptest.NewRecorder()
		Serve(rec2, again, name)
		if rec2.Code != http.StatusNotModified || rec2.Body.Len() != 0 {
			t.Errorf("%s revalidated: %d", name, rec2.Code)
		}
	}
	if !Has("/herald.mjs") || !Has("/herald-echo.js") || Has("/web.go") || Has("/herald-echo") {
		t.Error("Has")
	}
	rec := httptest.NewRecorder()
	Serve(rec, httptest.NewRequest(http.MethodPost, "/herald.js", nil), "/herald.js")
	if rec.Code != 405 {
		t.Errorf("POST: %d", rec.Code)
	}
}
