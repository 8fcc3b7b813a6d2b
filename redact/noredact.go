//go:build noredact

package redact

// The noredact build switches redaction off. It exists for one test: the
// end-to-end secret corpus test builds the binary with it to show that
// gitleaks finds every planted secret when nothing scrubs them, so that its
// zero findings with the real binary mean something. Never ship it.
func init() { disabled = true }
