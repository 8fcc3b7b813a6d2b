package match

import "fmt"

// Mode is the policy a proxy applies to requests: --mode, a rule's mode:,
// a fixture's input.json mode and a run record's mode are all one. What
// each mode does with each request is the proxy's policy table
// (proxy/policy.go); this is only the name and its parsing.
type Mode string

const (
	ModeRecord Mode = "record"
	ModeReplay Mode = "replay"
	ModeStrict Mode = "strict"
	ModeLive   Mode = "live"
)

// Modes are every mode, in the order the CLI names them.
var Modes = [...]Mode{ModeRecord, ModeReplay, ModeStrict, ModeLive}

// ParseMode is the one place a mode name is read.
func ParseMode(s string) (Mode, error) {
	for _, m := range Modes {
		if s == string(m) {
			return m, nil
		}
	}
	return "", fmt.Errorf("unknown mode %q: use record, replay, strict or live", s)
}
