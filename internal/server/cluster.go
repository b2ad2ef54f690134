package server

import (
	"cmp"
	"fmt"
	"log/slog"

	"github.com/herald-ws/herald/internal/broker"
	"github.com/herald-ws/herald/internal/broker/memory"
	"github.com/herald-ws/herald/internal/broker/redis"
	"github.com/herald-ws/herald/internal/config"
)

// engine builds the broker and history a node runs on: the in-process
// broker and the given memory history on a single node, or the Redis
// engine (both in one) when cluster.url is set. cluster is nil on a
// single node.
func engine(c config.Cluster, hist broker.History, log *slog.Logger) (b broker.Broker, h broker.History, cluster *redis.Engine, err error) {
	if c.URL == "" {
		return memory.New(), hist, nil, nil
	}
	e, err := redis.New(redis.Options{URL: c.URL, Prefix: c.Prefix, Log: log})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("cluster: %w", err)
	}
	log.Info("cluster engine", "engine", "redis", "url", c.Redacted(), "prefix", cmp.Or(c.Prefix, redis.DefaultPrefix))
	return e, e, e, nil
}

// clusterReady is the reason /ready gives while the cluster engine is
// unreachable, or "". The engine's error (with addresses) goes to the
// log, not to whoever asks /ready.
func (s *Server) clusterReady() string {
	if s.cluster == nil {
		return ""
	}
	if err := s.cluster.Ready(); err != nil {
		return "cluster engine unreachable: events published on other nodes do not reach this node's clients"
	}
	return ""
}
