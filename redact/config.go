package redact

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/cassetteproxy/cassetteproxy/internal/yamlerr"
)

// Config adds to the defaults. The zero Config is the defaults alone.
//
// Names in Headers, Fields and Allow compare case-insensitively and ignore
// '-' and '_' ("api_key", "apiKey" and "API-KEY" are one name).
type Config struct {
	Secret []byte `yaml:"-"` // per-store HMAC key for fingerprints; nil means no fingerprint

	// Values are secrets known by value (the secret-looking variables of a
	// child's environment, --secret-env, --secret-file): each is scrubbed
	// wherever it appears, as it is, percent-encoded, JSON-escaped or
	// inside base64. Values shorter than 8 bytes are ignored.
	Values []string `yaml:"-"`

	Headers   []string `yaml:"headers"`    // extra header names whose whole value is secret
	Fields    []string `yaml:"fields"`     // extra query, form and JSON field names whose value is secret
	JSONPaths []string `yaml:"json_paths"` // JSON paths ($.a.b, $.a[0], $.a[*].b, $..b) whose value is secret
	Patterns  []string `yaml:"patterns"`   // RE2 expressions; the first capture group, or the whole match, is secret
	Allow     []string `yaml:"allow"`      // header, query and field names the default name rules must keep
}

// LoadConfig reads a rules file and parses its redact: section; errors
// name the file and the line ("rules.yaml:7: ...").
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, yamlerr.At(path, 0, "cannot read rules: %v", err)
	}
	cfg, err := ParseConfig(data)
	return cfg, yamlerr.InFile(err, path)
}

// ParseConfig reads the redact: section of the rules YAML file. Other
// top-level keys (rules:, owned by package match) are ignored; an unknown
// key inside redact:, a bad regular expression or a bad JSON path is an
// error of type *yamlerr.Error that carries its line.
//
//	redact:
//	  headers: [X-Internal-Auth]
//	  fields: [ssn, card_number]
//	  json_paths: ["$.customer.email"]
//	  patterns: ["acct-[0-9]{8}"]
//	  allow: [key]
func ParseConfig(data []byte) (Config, error) {
	errAt := func(line int, format string, args ...any) error {
		return yamlerr.At("", line, format, args...)
	}
	var cfg Config
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return Config{}, yamlerr.Syntax("", err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return cfg, nil
	}
	top := resolve(doc.Content[0])
	if isNull(top) {
		return cfg, nil
	}
	if top.Kind != yaml.MappingNode {
		return Config{}, errAt(top.Line, "rules file must be a mapping")
	}
	var sec *yaml.Node
	for i := 0; i+1 < len(top.Content); i += 2 {
		if k := resolve(top.Content[i]); k.Value == "redact" {
			if sec != nil {
				return Config{}, errAt(k.Line, "key \"redact\" already defined")
			}
			sec = resolve(top.Content[i+1])
		}
	}
	if sec == nil || isNull(sec) {
		return cfg, nil
	}
	if sec.Kind != yaml.MappingNode {
		return Config{}, errAt(sec.Line, "redact must be a mapping with headers, fields, json_paths, patterns or allow")
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(sec.Content); i += 2 {
		k, v := resolve(sec.Content[i]), resolve(sec.Content[i+1])
		if prev, ok := seen[k.Value]; ok {
			return Config{}, errAt(k.Line, "redact.%s already defined at line %d", k.Value, prev)
		}
		seen[k.Value] = k.Line
		var dst *[]string
		switch k.Value {
		case "headers":
			dst = &cfg.Headers
		case "fields":
			dst = &cfg.Fields
		case "json_paths":
			dst = &cfg.JSONPaths
		case "patterns":
			dst = &cfg.Patterns
		case "allow":
			dst = &cfg.Allow
		default:
			return Config{}, errAt(k.Line, "redact: unknown key %q (want headers, fields, json_paths, patterns or allow)", k.Value)
		}
		if isNull(v) {
			continue
		}
		items := []*yaml.Node{v}
		if v.Kind == yaml.SequenceNode {
			items = v.Content
		}
		for _, it := range items {
			it = resolve(it)
			if it.Kind != yaml.ScalarNode || isNull(it) {
				return Config{}, errAt(it.Line, "redact.%s must be a list of strings", k.Value)
			}
			s := it.Value
			if strings.TrimSpace(s) == "" {
				return Config{}, errAt(it.Line, "redact.%s: empty entry", k.Value)
			}
			switch k.Value {
			case "patterns":
				if _, err := regexp.Compile(s); err != nil {
					return Config{}, errAt(it.Line, "redact.patterns: bad regular expression %q: %v", s, err)
				}
			case "json_paths":
				if _, err := parseJSONPath(s); err != nil {
					return Config{}, errAt(it.Line, "redact.json_paths: %v", err)
				}
			}
			*dst = append(*dst, s)
		}
	}
	return cfg, nil
}

func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// JSON paths: $ then .name, ['name'], ["name"], [N], .*, [*], ..name, ..*

type segKind uint8

const (
	segName segKind = iota
	segAny
	segIndex
	segDescName
	segDescAny
)

type pseg struct {
	kind segKind
	name string
	idx  int
}

func parseJSONPath(p string) ([]pseg, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("bad JSON path %q: %s", p, fmt.Sprintf(format, args...))
	}
	if !strings.HasPrefix(p, "$") {
		return nil, bad("must start with $")
	}
	var segs []pseg
	i := 1
	for i < len(p) {
		switch {
		case strings.HasPrefix(p[i:], ".."):
			i += 2
			if i < len(p) && p[i] == '*' {
				segs = append(segs, pseg{kind: segDescAny})
				i++
				continue
			}
			n := dotName(p[i:])
			if n == "" {
				return nil, bad("a name must follow .. at offset %d", i)
			}
			segs = append(segs, pseg{kind: segDescName, name: n})
			i += len(n)
		case p[i] == '.':
			i++
			if i < len(p) && p[i] == '*' {
				segs = append(segs, pseg{kind: segAny})
				i++
				continue
			}
			n := dotName(p[i:])
			if n == "" {
				return nil, bad("a name must follow . at offset %d", i)
			}
			segs = append(segs, pseg{kind: segName, name: n})
			i += len(n)
		case p[i] == '[':
			end := strings.IndexByte(p[i:], ']')
			if end < 0 {
				return nil, bad("unclosed [ at offset %d", i)
			}
			in := p[i+1 : i+end]
			switch {
			case in == "*":
				segs = append(segs, pseg{kind: segAny})
			case len(in) >= 2 && (in[0] == '\'' || in[0] == '"') && in[len(in)-1] == in[0]:
				segs = append(segs, pseg{kind: segName, name: in[1 : len(in)-1]})
			default:
				n, err := strconv.Atoi(in)
				if err != nil || n < 0 {
					return nil, bad("[%s] is neither an index, * nor a quoted name", in)
				}
				segs = append(segs, pseg{kind: segIndex, idx: n})
			}
			i += end + 1
		default:
			return nil, bad("unexpected %q at offset %d", p[i], i)
		}
	}
	if len(segs) == 0 {
		return nil, bad("names no field (use $.name)")
	}
	return segs, nil
}

func dotName(s string) string {
	n := 0
	for n < len(s) && s[n] != '.' && s[n] != '[' {
		n++
	}
	return s[:n]
}
