package server

import (
	"log/slog"

	"github.com/herald-ws/herald/internal/apps"
	"github.com/herald-ws/herald/internal/webhook"
)

// newWebhooks builds the webhook dispatcher for the apps that have
// webhooks, or nil when none has: then no lifecycle event is even built.
func newWebhooks(reg *apps.Registry, log *slog.Logger) *webhook.Dispatcher {
	any := false
	for _, a := range reg.All() {
		any = any || len(a.Webhooks) > 0
	}
	if !any {
		return nil
	}
	return webhook.New(webhook.Options{
		Lookup: func(id string) (key, secret string, endpoints []webhook.Endpoint, ok bool) {
			a := reg.ByID(id)
			if a == nil {
				return "", "", nil, false
			}
			for _, w := range a.Webhooks {
				endpoints = append(endpoints, webhook.Endpoint{URL: w.URL, Events: w.Events})
			}
			return a.Key, a.Secret, endpoints, true
		},
		Log: log,
	})
}
