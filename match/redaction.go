package match

import (
	"bytes"
	"strings"
)

// Redaction markers written by package redact look like [REDACTED:<kind>] or
// [REDACTED:<kind>:<hex fingerprint>]. The fingerprint identifies which
// secret stood there; for matching it must not matter, so keys see
// [REDACTED:<kind>] only. The percent-encoded spelling (in URLs and form
// bodies: %5BREDACTED%3A<kind>%3A<hex>%5D) is handled alike.

type markerSyntax struct {
	open, sep, close string
	fold             bool // percent escapes may be written %5b or %5B
}

var markerSyntaxes = []markerSyntax{
	{"[REDACTED:", ":", "]", false},
	{"%5BREDACTED%3A", "%3A", "%5D", true},
}

// StripFingerprints removes the fingerprint part of every redaction marker
// in s, leaving [REDACTED:<kind>].
func StripFingerprints(s string) string {
	if !strings.Contains(s, "REDACTED") {
		return s
	}
	for _, m := range markerSyntaxes {
		s = stripMarker(s, m)
	}
	return s
}

func stripFingerprintsBytes(b []byte) []byte {
	if !bytes.Contains(b, []byte("REDACTED")) {
		return b
	}
	return []byte(StripFingerprints(string(b)))
}

func isKindByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.'
}

func isHexByte(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// hasPrefixFold is a case-insensitive HasPrefix for the ASCII tokens above
// (percent escapes may be written %5b or %5B).
func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

func indexFold(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i] == sub[0] && hasPrefixFold(s[i:], sub) {
			return i
		}
	}
	return -1
}

func stripMarker(s string, m markerSyntax) string {
	var sb strings.Builder
	done := 0 // s[:done] is already in sb (or untouched when sb is empty)
	i := 0
	for {
		var j int
		if m.fold {
			j = indexFold(s[i:], m.open)
		} else {
			j = strings.Index(s[i:], m.open)
		}
		if j < 0 {
			break
		}
		start := i + j
		k := start + len(m.open)
		kindStart := k
		for k < len(s) && isKindByte(s[k]) {
			k++
		}
		i = start + 1
		if k == kindStart || !hasPrefixFold(s[k:], m.sep) {
			continue
		}
		sepAt := k
		k += len(m.sep)
		hexStart := k
		for k < len(s) && isHexByte(s[k]) {
			k++
		}
		if k == hexStart || !hasPrefixFold(s[k:], m.close) {
			continue
		}
		// Drop s[sepAt:k], the ":<hex>" part.
		sb.WriteString(s[done:sepAt])
		done = k
		i = k
	}
	if done == 0 {
		return s
	}
	sb.WriteString(s[done:])
	return sb.String()
}
