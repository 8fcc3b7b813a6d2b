package main

import (
	"os"
	"os/signal"
	"syscall"
)

// catchInterrupts catches SIGINT and SIGTERM from the moment it is called,
// before anything starts, so that one arriving during start-up is neither
// lost nor fatal: run and replay forward them to the child, serve stops
// cleanly with its recordings flushed. buffer is how many may wait
// unread. The returned func ends the catch.
func catchInterrupts(buffer int) (<-chan os.Signal, func()) {
	sigs := make(chan os.Signal, buffer)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	return sigs, func() { signal.Stop(sigs) }
}
