//go:build !unix

package store

import (
	"os"
	"time"
)

// lockShared is a no-op where flock does not exist; bbolt's own lock still
// guards the file.
func lockShared(*os.File, time.Duration) (bool, error) { return true, nil }
