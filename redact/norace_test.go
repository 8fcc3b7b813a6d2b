//go:build !race

package redact_test

const raceOn = false // see race_test.go
