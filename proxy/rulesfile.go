package proxy

import (
	"fmt"
	"os"

	"github.com/cassetteproxy/cassetteproxy/internal/yamlerr"
	"github.com/cassetteproxy/cassetteproxy/match"
	"github.com/cassetteproxy/cassetteproxy/redact"
)

// LoadRulesFile reads a rules file: one YAML file, two sections, rules:
// for matching and redact: for scrubbing. Both sections' errors name the
// file and the line ("rules.yaml:7: ...").
func LoadRulesFile(path string) (*match.Rules, redact.Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, redact.Config{}, fmt.Errorf("read rules: %w", err)
	}
	rules, err := match.ParseRulesFile(path, data)
	if err != nil {
		return nil, redact.Config{}, err
	}
	cfg, err := redact.ParseConfig(data)
	if err != nil {
		return nil, redact.Config{}, yamlerr.InFile(err, path)
	}
	return rules, cfg, nil
}
