package config

import (
	"reflect"
	"strings"
	"testing"

	"github.com/herald-ws/herald/internal/apps"
)

// apps[].webhooks from the file; HERALD_WEBHOOK_URL and
// HERALD_WEBHOOK_EVENTS (comma-separated) set the first app's one.
func TestLoadWebhooks(t *testing.T) {
	inDir(t, map[string]string{
		"herald.yaml": "apps:\n  - id: a\n    key: ka\n    secret: sa\n    webhooks:\n" +
			"      - {url: 'https://app.test/pusher/webhooks', events: [channel_occupied, channel_vacated]}\n" +
			"      - url: http://127.0.0.1:9000/hooks\n",
	})
	c := load(t, Options{File: "herald.yaml"})
	want := []apps.Webhook{{URL: "https://app.test/pusher/webhooks", Events: []string{"channel_occupied", "channel_vacated"}}, {URL: "http://127.0.0.1:9000/hooks"}}
	if got := c.Apps[0].Webhooks; !reflect.DeepEqual(got, want) {
		t.Fatalf("file: %+v", got)
	}
	c = load(t, Options{Environ: []string{"HERALD_WEBHOOK_URL=https://app.test/hooks", "HERALD_WEBHOOK_EVENTS=member_added, member_removed"}})
	want = []apps.Webhook{{URL: "https://app.test/hooks", Events: []string{"member_added", "member_removed"}}}
	if got := c.Apps[0].Webhooks; !reflect.DeepEqual(got, want) {
		t.Fatalf("environment: %+v", got)
	}
}

func TestWebhookSettingErrors(t *testing.T) {
	for _, c := range []struct {
		file, env, want string
	}{
		{"    webhooks: {url: x}\n", "", "apps[0].webhooks: must be a list"},
		{"    webhooks: [{url: 'ftp://x'}]\n", "", "apps[0].webhooks[0].url: must be an absolute http:// or https:// URL"},
		{"    webhooks: [{url: 'https://x', events: [channel_ocupied]}]\n", "", `apps[0].webhooks[0].events[0]: unknown event "channel_ocupied"`},
		{"    webhooks: [{url: 'https://x', secret: s}]\n", "", "unknown key"},
		{"", "HERALD_WEBHOOK_EVENTS=client_event", "HERALD_WEBHOOK_EVENTS needs HERALD_WEBHOOK_URL"},
	} {
		inDir(t, map[string]string{"herald.yaml": "apps:\n  - id: a\n    key: ka\n    secret: sa\n" + c.file})
		var env []string
		if c.env != "" {
			env = []string{c.env}
		}
		_, err := Load(Options{File: "herald.yaml", Environ: env})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q %q: %v, want %q", c.file, c.env, err, c.want)
		}
	}
}
