//go:build race

package billing

// raceEnabled: the race detector slows the simulated year about tenfold; it runs smaller.
const raceEnabled = true
