package alerting

import (
	"testing"

	"go.uber.org/goleak"
)

// The rule manager, the senders and the test servers all stop: no goroutine outlives the tests.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
