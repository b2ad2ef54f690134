package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/herald-ws/herald/internal/apps"
	"github.com/herald-ws/herald/internal/config"
	"github.com/herald-ws/herald/internal/signature"
)

// A subscription that occupies a channel reaches the app's webhook,
// signed with its secret, through the node's observer.
func TestWebhookOnSubscribe(t *testing.T) {
	type post struct {
		key, sig string
		body     []byte
	}
	posts := make(chan post, 10)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		posts <- post{r.Header.Get("X-Pusher-Key"), r.Header.Get("X-Pusher-Signature"), b}
	}))
	t.Cleanup(recv.Close) // after the server's: shutdown flushes channel_vacated to it
	s := start(t, func(c *config.Config) { c.Apps[0].Webhooks = []apps.Webhook{{URL: recv.URL + "/hooks"}} })
	subscribed(t, s, "news")
	select {
	case p := <-posts:
		if p.key != config.DefaultAppKey || !signature.Equal(p.sig, signature.Webhook(config.DefaultAppSecret, p.body)) {
			t.Errorf("key %q, signature %q", p.key, p.sig)
		}
		var b struct {
			TimeMS int64 `json:"time_ms"`
			Events []map[string]any
		}
		if err := json.Unmarshal(p.body, &b); err != nil || b.TimeMS == 0 || len(b.Events) != 1 || b.Events[0]["name"] != "channel_occupied" || b.Events[0]["channel"] != "news" {
			t.Errorf("body %s", p.body)
		}
	case <-time.After(guard):
		t.Fatal("no webhook")
	}
	if st := s.Stats(); st.Webhooks == nil {
		t.Error("no webhook stats")
	}
}
