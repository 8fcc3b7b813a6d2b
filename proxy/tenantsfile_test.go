package proxy

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseTenants(t *testing.T) {
	sum := sha256.Sum256([]byte("s3cret"))
	hexSum := hex.EncodeToString(sum[:])
	empty := sha256.Sum256(nil)
	tests := []struct {
		name, yaml string
		want       string // "" parses; else the error holds it
	}{
		{"plain password", "tenants:\n  - {user: a, password: s3cret, cassette: a, mode: record}\n", ""},
		{"hashed password", "tenants:\n  - {user: a, password_sha256: " + hexSum + ", cassette: a, mode: replay, rules: r.yaml}\n", ""},
		{"upper-case hash", "tenants:\n  - {user: a, password_sha256: " + strings.ToUpper(hexSum) + ", cassette: a, mode: live}\n", ""},
		{"numeric password", "tenants:\n  - {user: a, password: 1234, cassette: a, mode: strict}\n", ""},
		{"empty file", "", "empty"},
		{"not a mapping", "- a\n", ":1: want a mapping"},
		{"other top key", "tenant:\n  - {user: a}\n", `:1: unknown key "tenant"`},
		{"empty list", "tenants: []\n", ":1: tenants: want a list of at least one tenant"},
		{"tenant not a mapping", "tenants:\n  - a\n", ":2: each tenant is a mapping"},
		{"unknown key", "tenants:\n  - user: a\n    password: p\n    casette: a\n", `:4: unknown key "casette"`},
		{"key twice", "tenants:\n  - user: a\n    user: b\n", ":3: user: given twice"},
		{"no user", "tenants:\n  - {password: p, cassette: a, mode: record}\n", ":2: user: missing"},
		{"colon in user", "tenants:\n  - {user: \"a:b\", password: p, cassette: a, mode: record}\n", "has a colon"},
		{"no password", "tenants:\n  - {user: a, cassette: a, mode: record}\n", `:2: tenant "a" has no password`},
		{"empty password", "tenants:\n  - user: a\n    password:\n    cassette: a\n", ":3: password: empty"},
		{"both passwords", "tenants:\n  - user: a\n    password: p\n    password_sha256: " + hexSum + "\n", ":4: give password or password_sha256, not both"},
		{"short hash", "tenants:\n  - {user: a, password_sha256: abcd, cassette: a, mode: record}\n", "64 hex digits"},
		{"hash of nothing", "tenants:\n  - {user: a, password_sha256: " + hex.EncodeToString(empty[:]) + ", cassette: a, mode: record}\n", "empty password"},
		{"no cassette", "tenants:\n  - {user: a, password: p, mode: record}\n", ":2: cassette: missing"},
		{"no mode", "tenants:\n  - {user: a, password: p, cassette: a}\n", ":2: mode: missing"},
		{"bad mode", "tenants:\n  - user: a\n    password: p\n    cassette: a\n    mode: play\n", `:5: unknown mode "play"`},
		{"list value", "tenants:\n  - user: [a]\n", ":2: user: want a single value"},
		{"duplicate user", "tenants:\n  - {user: a, password: p, cassette: a, mode: record}\n  - {user: a, password: q, cassette: b, mode: record}\n", `:3: user "a" is already the tenant at line 2`},
		{"duplicate cassette", "tenants:\n  - {user: a, password: p, cassette: c, mode: record}\n  - {user: b, password: q, cassette: c, mode: record}\n", `:3: cassette "c" is already`},
		{"broken yaml", "tenants:\n  - {user: a\n", "t.yaml:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			specs, err := ParseTenants("t.yaml", []byte(tc.yaml))
			if tc.want == "" {
				if err != nil || len(specs) != 1 {
					t.Fatalf("%v %+v", err, specs)
				}
				if strings.Contains(tc.yaml, "s3cret") && specs[0].PasswordSum != sum {
					t.Errorf("password sum %x, want %x", specs[0].PasswordSum, sum)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "t.yaml") || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %v, want one line with %q", err, tc.want)
			}
		})
	}
}

func TestLoadTenantsFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tenants.yaml")
	content := "tenants:\n  - {user: a, password: p, cassette: a, mode: record, rules: rules-a.yaml}\n  - {user: b, password: q, cassette: b, mode: record, rules: /etc/r.yaml}\n"
	for _, tc := range []struct {
		perm os.FileMode
		ok   bool
	}{{0o600, true}, {0o400, true}, {0o640, false}, {0o604, false}, {0o660, false}} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, tc.perm); err != nil {
			t.Fatal(err)
		}
		specs, err := LoadTenantsFile(path)
		if (err == nil) != tc.ok {
			t.Fatalf("mode %04o: %v", tc.perm, err)
		}
		if err != nil {
			if !strings.Contains(err.Error(), "chmod 600") {
				t.Errorf("mode %04o: %v", tc.perm, err)
			}
			continue
		}
		if specs[0].Rules != filepath.Join(dir, "rules-a.yaml") || specs[1].Rules != "/etc/r.yaml" {
			t.Errorf("rules paths: %q %q", specs[0].Rules, specs[1].Rules)
		}
	}
}

// TestTenantsDocExample: the example in docs/tenants.md parses.
func TestTenantsDocExample(t *testing.T) {
	doc, err := os.ReadFile("../docs/tenants.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, _ := strings.Cut(string(doc), "```yaml\n")
	example, _, _ := strings.Cut(rest, "```")
	specs, err := ParseTenants("docs/tenants.md", []byte(example))
	if err != nil || len(specs) != 2 || specs[1].Rules != "rules-b.yaml" {
		t.Fatalf("%v %+v", err, specs)
	}
	if want := sha256.Sum256([]byte("e7a1c95b03d24f68")); specs[1].PasswordSum != want {
		t.Errorf("the example's hash is not of the password the text uses")
	}
}
