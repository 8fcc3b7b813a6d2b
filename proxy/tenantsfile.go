package proxy

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode"

	"go.yaml.in/yaml/v3"
)

// TenantSpec is one tenant of a tenants file (serve --tenants FILE): the
// credentials that select it and the proxy it gets.
type TenantSpec struct {
	User string
	// PasswordSum is the SHA-256 of the password: the file gives either the
	// password or this sum.
	PasswordSum [32]byte
	// Password is the password when the file gives it in plaintext, for
	// scrubbing wherever an agent sends it (a redaction value); "" when
	// the file gives its sum. Credentials are checked against PasswordSum.
	Password string
	Cassette string
	Mode     Mode
	// Rules is the tenant's rules file, resolved against the tenants file's
	// folder; "" for the default rules.
	Rules string
	Line  int // where the tenant starts in the file
}

// tenantKeys are a tenant's keys, in the order errors list them.
var tenantKeys = []string{"user", "password", "password_sha256", "cassette", "mode", "rules"}

// LoadTenantsFile reads and checks a tenants file. It holds passwords (or
// their SHA-256), so it must not be readable by group or others, like the
// CA's key. Every error is one line naming the file, and the line when
// there is one.
func LoadTenantsFile(path string) ([]TenantSpec, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("tenants file: %w", err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("tenants file %s is not a regular file", path)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("tenants file %s is open to group or others (mode %04o) and holds passwords; fix it with: chmod 600 %s",
			path, perm, quoteArg(path))
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tenants file: %w", err)
	}
	specs, err := ParseTenants(path, data)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	for i := range specs {
		if r := specs[i].Rules; r != "" && !filepath.IsAbs(r) {
			specs[i].Rules = filepath.Join(dir, r)
		}
	}
	return specs, nil
}

// ParseTenants parses a tenants file's content; file names it in errors.
//
//	tenants:
//	  - user: agent-a
//	    password: s3cret            # or password_sha256: <64 hex digits>
//	    cassette: agent-a
//	    mode: record
//	    rules: rules-a.yaml         # optional
func ParseTenants(file string, data []byte) ([]TenantSpec, error) {
	errAt := func(line int, format string, args ...any) error {
		if line > 0 {
			return fmt.Errorf("%s:%d: %s", file, line, fmt.Sprintf(format, args...))
		}
		return fmt.Errorf("%s: %s", file, fmt.Sprintf(format, args...))
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		// yaml.v3 says "yaml: line N: ..."; keep it on one line.
		msg := strings.TrimPrefix(strings.ReplaceAll(err.Error(), "\n", "; "), "yaml: ")
		if rest, ok := strings.CutPrefix(msg, "line "); ok {
			if n, after, ok := strings.Cut(rest, ": "); ok {
				return nil, fmt.Errorf("%s:%s: %s", file, n, after)
			}
		}
		return nil, errAt(0, "%s", msg)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, errAt(0, "empty: want a tenants: list (user, password or password_sha256, cassette, mode)")
	}
	top := deref(doc.Content[0])
	if top.Kind != yaml.MappingNode {
		return nil, errAt(top.Line, "want a mapping with a tenants: list")
	}
	var list *yaml.Node
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i], deref(top.Content[i+1])
		if k.Value != "tenants" {
			return nil, errAt(k.Line, "unknown key %q: the file has one key, tenants", k.Value)
		}
		if list != nil {
			return nil, errAt(k.Line, "tenants: given twice")
		}
		list = v
	}
	if list == nil || list.Kind != yaml.SequenceNode || len(list.Content) == 0 {
		line := top.Line
		if list != nil {
			line = list.Line
		}
		return nil, errAt(line, "tenants: want a list of at least one tenant (user, password or password_sha256, cassette, mode)")
	}
	users, cassettes := map[string]int{}, map[string]int{}
	specs := make([]TenantSpec, 0, len(list.Content))
	for _, n := range list.Content {
		n = deref(n)
		spec, err := parseTenant(n, errAt)
		if err != nil {
			return nil, err
		}
		if prev, ok := users[spec.User]; ok {
			return nil, errAt(n.Line, "user %q is already the tenant at line %d", spec.User, prev)
		}
		if prev, ok := cassettes[spec.Cassette]; ok {
			return nil, errAt(n.Line, "cassette %q is already the tenant's at line %d: each tenant records into its own", spec.Cassette, prev)
		}
		users[spec.User], cassettes[spec.Cassette] = n.Line, n.Line
		specs = append(specs, spec)
	}
	return specs, nil
}

func parseTenant(n *yaml.Node, errAt func(int, string, ...any) error) (TenantSpec, error) {
	spec := TenantSpec{Line: n.Line}
	if n.Kind != yaml.MappingNode {
		return spec, errAt(n.Line, "each tenant is a mapping (%s)", strings.Join(tenantKeys, ", "))
	}
	seen := map[string]int{}
	vals := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], deref(n.Content[i+1])
		if !slices.Contains(tenantKeys, k.Value) {
			return spec, errAt(k.Line, "unknown key %q (a tenant has %s)", k.Value, strings.Join(tenantKeys, ", "))
		}
		if prev, ok := seen[k.Value]; ok {
			return spec, errAt(k.Line, "%s: given twice (first at line %d)", k.Value, prev)
		}
		seen[k.Value] = k.Line
		if v.Kind != yaml.ScalarNode {
			return spec, errAt(v.Line, "%s: want a single value", k.Value)
		}
		vals[k.Value] = v
	}
	str := func(key string) (string, int) {
		v, ok := vals[key]
		switch {
		case !ok:
			return "", n.Line
		case v.Tag == "!!null":
			return "", v.Line
		}
		return v.Value, v.Line
	}
	user, line := str("user")
	switch {
	case user == "":
		return spec, errAt(line, "user: missing or empty")
	case strings.Contains(user, ":"):
		return spec, errAt(line, "user %q has a colon: Basic credentials end the user name at the first one", user)
	case strings.ContainsFunc(user, unicode.IsControl):
		return spec, errAt(line, "user: control characters are not allowed")
	}
	spec.User = user
	_, hasPlain := vals["password"]
	_, hasSum := vals["password_sha256"]
	switch {
	case hasPlain && hasSum:
		return spec, errAt(seen["password_sha256"], "give password or password_sha256, not both")
	case hasPlain:
		pw, line := str("password")
		if pw == "" {
			return spec, errAt(line, "password: empty (tenant %q)", user)
		}
		spec.PasswordSum, spec.Password = sha256.Sum256([]byte(pw)), pw
	case hasSum:
		h, line := str("password_sha256")
		b, err := hex.DecodeString(h)
		if len(h) != 64 || err != nil {
			return spec, errAt(line, "password_sha256: want 64 hex digits (sha256sum of the password), got %d characters", len(h))
		}
		copy(spec.PasswordSum[:], b)
		if spec.PasswordSum == sha256.Sum256(nil) {
			return spec, errAt(line, "password_sha256 is the SHA-256 of an empty password (tenant %q)", user)
		}
	default:
		return spec, errAt(n.Line, "tenant %q has no password: give password or password_sha256", user)
	}
	cassette, line := str("cassette")
	if cassette == "" {
		return spec, errAt(line, "cassette: missing or empty (tenant %q)", user)
	}
	spec.Cassette = cassette
	mode, line := str("mode")
	if mode == "" {
		return spec, errAt(line, "mode: missing (tenant %q): record, replay, strict or live", user)
	}
	m, err := ParseMode(mode)
	if err != nil {
		return spec, errAt(line, "%v", err)
	}
	spec.Mode = m
	spec.Rules, _ = str("rules")
	return spec, nil
}

// deref follows YAML aliases.
func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}
