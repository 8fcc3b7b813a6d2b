//go:build race

package redact_test

// raceOn: the race detector slows the byte loops of the equivalence tests
// some fifty times, and finds nothing in them (they run on one goroutine),
// so under -race (make test) they run a sample; go test without -race runs
// them all.
const raceOn = true
