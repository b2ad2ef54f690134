package brokertest_test

import (
	"testing"
	"time"

	"github.com/herald-ws/herald/internal/broker/brokertest"
	"github.com/herald-ws/herald/internal/broker/memory"
	"github.com/herald-ws/herald/internal/history"
)

// The single-node engine: the memory broker with the memory history.
func TestMemory(t *testing.T) {
	brokertest.Run(t, func(t *testing.T, n int, now func() time.Time) []brokertest.Node {
		if n != 1 {
			return nil
		}
		return []brokertest.Node{{Broker: memory.New(), History: history.NewMemory(history.Options{Now: now})}}
	})
}
