package alerting

import (
	"testing"

	"go.uber.org/goleak"
)

// The rule manager, the senders and the test servers all stop: no goroutine outlives the tests.
// Idle keep-alive connections of the remote stores' HTTP clients are not the product's
// goroutines (Prometheus' remote-read client keeps its own pool, which Close cannot reach) and
// are ignored.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"))
}
