package apps

import "testing"

func TestOriginAllowed(t *testing.T) {
	a := &App{AllowedOrigins: []string{"app.example.com", "*.example.org"}}
	cases := map[string]bool{
		"https://app.example.com":      true,
		"http://app.example.com:8000":  true,
		"https://APP.example.com":      true,
		"https://evil.com":             false,
		"https://app.example.com.evil": false,
		"https://x.example.org":        true,
		"https://a.b.example.org":      true,
		"https://example.org":          false,
		"":                             false,
	}
	for origin, want := range cases {
		if got := a.OriginAllowed(origin); got != want {
			t.Errorf("OriginAllowed(%q) = %v, want %v", origin, got, want)
		}
	}
	if !(&App{AllowedOrigins: []string{"*"}}).OriginAllowed("https://anything") {
		t.Error("* must allow any origin")
	}
}

func TestRegistry(t *testing.T) {
	if _, err := NewRegistry([]*App{{ID: "1", Key: "k", Secret: "s"}, {ID: "1", Key: "k2", Secret: "s"}}); err == nil {
		t.Fatal("duplicate id accepted")
	}
	r, err := NewRegistry([]*App{{ID: "1", Key: "k", Secret: "s"}})
	if err != nil || r.ByKey("k").ID != "1" || r.ByID("1").Key != "k" || r.ByID("2") != nil {
		t.Fatalf("registry %v %v", r, err)
	}
	if l := (Limits{MaxBatchEvents: 3}).WithDefaults(); l.MaxBatchEvents != 3 || l.MaxChannelsPerEvent != 100 {
		t.Fatalf("WithDefaults %+v", l)
	}
}
