// Package promtext owns every metric cassetteproxy exposes: the proxy's
// GET /metrics (one proxy's or many tenants') and the monitor's and drift's
// textfiles for node_exporter. It models metric families (name, help,
// counter or gauge, samples of label pairs and a value) and writes them in
// the Prometheus text exposition format, version 0.0.4, as
// github.com/prometheus/client_golang writes it: families sorted by name,
// labels by name, samples by their label values, values formatted alike.
//
// It exists instead of client_golang, whose registry, client_model
// (with the protobuf runtime and its registry), expfmt and procfs added
// about 2 MiB resident to every process, measured on a probe binary, for
// a handful of gauges and counters read at scrape time; the proxy's peak
// RSS has a budget of 48 MiB, and most of the binary's text and rodata is
// mapped resident. Without them cassetteproxy's binary is 1.2 MB smaller
// and an idle proxy 0.9 MiB smaller (the protobuf runtime was still linked
// by other code when measured). The text written is client_golang's byte
// for byte; the Content-Type lacks its "escaping=underscores" (names here
// never need escaping) and no answer is gzipped.
package promtext

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/cassetteproxy/cassetteproxy/internal/fsutil"
)

// ContentType is what Handler answers with: the text format, 0.0.4.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// Type is a family's metric type.
type Type string

// The types written: a counter only goes up (its name should end in
// _total), a gauge is a value as it is now.
const (
	Counter Type = "counter"
	Gauge   Type = "gauge"
)

// Label is one label pair of a sample.
type Label struct {
	Name, Value string
}

// Sample is one series of a family: its labels (in any order) and value.
type Sample struct {
	Labels []Label
	Value  float64
}

// Family is a metric: its name, help text (required, as promtool check
// metrics requires it), type and samples. A family without samples is not
// written.
type Family struct {
	Name    string
	Help    string
	Type    Type
	Samples []Sample

	index map[string]int // Set's: a label set's key to its sample
}

// Set sets the value of the sample with these labels, adding it if the
// family has none yet (as a client_golang GaugeVec's Set does: the last
// value set wins). Set a family through one pointer: a copy of a family
// shares the index Set keeps.
func (f *Family) Set(value float64, labels ...Label) {
	if f.index == nil {
		f.index = make(map[string]int, len(f.Samples))
		for i, s := range f.Samples {
			f.index[labelKey(s.Labels)] = i
		}
	}
	key := labelKey(labels)
	if i, ok := f.index[key]; ok {
		f.Samples[i].Value = value
		return
	}
	f.index[key] = len(f.Samples)
	f.Samples = append(f.Samples, Sample{Labels: slices.Clone(labels), Value: value})
}

// labelKey identifies a label set whatever the order of its labels: each
// name and value length-prefixed, in name order.
func labelKey(labels []Label) string {
	sorted := sortedLabels(labels)
	var b strings.Builder
	for _, l := range sorted {
		for _, s := range []string{l.Name, l.Value} {
			b.WriteString(strconv.Itoa(len(s)))
			b.WriteByte(':')
			b.WriteString(s)
		}
	}
	return b.String()
}

func sortedLabels(labels []Label) []Label {
	sorted := slices.Clone(labels)
	slices.SortStableFunc(sorted, func(a, b Label) int { return strings.Compare(a.Name, b.Name) })
	return sorted
}

// Write writes fams to w in the text format. Families of the same name
// (one per tenant, say) are merged into one, with one HELP and TYPE and
// all their samples; they must agree on help and type. It returns an
// error, having written nothing, for an invalid metric or label name, a
// label given twice in a sample, a label value or help that is not UTF-8,
// an unknown type, a missing help, or two samples of a family with the
// same labels.
func Write(w io.Writer, fams ...Family) error {
	data, err := Format(fams...)
	if err != nil {
		return err
	}
	_, err = w.Write(data)
	return err
}

// WriteFile writes fams to path as Write does, atomically (a temporary
// file and a rename, mode 0644): node_exporter's textfile collector never
// reads half a file. On an error path is left as it was.
func WriteFile(path string, fams ...Family) error {
	data, err := Format(fams...)
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(path, data, 0o644)
}

// Handler serves the families gather returns, called at every scrape, as
// Write writes them; an error is a 500 naming it.
func Handler(gather func() []Family) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, err := Format(gather()...)
		if err != nil {
			http.Error(w, "An error has occurred while serving metrics:\n\n"+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", ContentType)
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		_, _ = w.Write(data)
	})
}

// Format is what Write writes.
func Format(fams ...Family) ([]byte, error) {
	merged := map[string]*Family{}
	for _, f := range fams {
		if !validMetricName(f.Name) {
			return nil, fmt.Errorf("promtext: invalid metric name %q", f.Name)
		}
		if f.Type != Counter && f.Type != Gauge {
			return nil, fmt.Errorf("promtext: %s: unknown type %q", f.Name, f.Type)
		}
		if f.Help == "" || !utf8.ValidString(f.Help) {
			return nil, fmt.Errorf("promtext: %s: help %q is empty or not UTF-8", f.Name, f.Help)
		}
		m := merged[f.Name]
		if m == nil {
			m = &Family{Name: f.Name, Help: f.Help, Type: f.Type}
			merged[f.Name] = m
		} else if m.Help != f.Help || m.Type != f.Type {
			return nil, fmt.Errorf("promtext: %s given twice, as %s %q and as %s %q", f.Name, m.Type, m.Help, f.Type, f.Help)
		}
		for _, s := range f.Samples {
			labels := sortedLabels(s.Labels)
			for i, l := range labels {
				if !validLabelName(l.Name) {
					return nil, fmt.Errorf("promtext: %s: invalid label name %q", f.Name, l.Name)
				}
				if i > 0 && labels[i-1].Name == l.Name {
					return nil, fmt.Errorf("promtext: %s: label %s given twice in a sample", f.Name, l.Name)
				}
				if !utf8.ValidString(l.Value) {
					return nil, fmt.Errorf("promtext: %s: label %s: value %q is not UTF-8", f.Name, l.Name, l.Value)
				}
			}
			m.Samples = append(m.Samples, Sample{Labels: labels, Value: s.Value})
		}
	}
	names := make([]string, 0, len(merged))
	for name, f := range merged {
		if len(f.Samples) > 0 {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	var b bytes.Buffer
	for _, name := range names {
		f := merged[name]
		slices.SortFunc(f.Samples, compareSamples)
		for i := 1; i < len(f.Samples); i++ {
			if compareSamples(f.Samples[i-1], f.Samples[i]) == 0 {
				return nil, fmt.Errorf("promtext: %s: two samples with the labels {%s}", name, formatLabels(f.Samples[i].Labels))
			}
		}
		b.WriteString("# HELP " + name + " " + escapeHelp.Replace(f.Help) + "\n")
		b.WriteString("# TYPE " + name + " " + string(f.Type) + "\n")
		for _, s := range f.Samples {
			b.WriteString(name)
			if len(s.Labels) > 0 {
				b.WriteString("{" + formatLabels(s.Labels) + "}")
			}
			b.WriteString(" " + FormatValue(s.Value) + "\n")
		}
	}
	return b.Bytes(), nil
}

// compareSamples orders samples (their labels sorted by name) as
// client_golang does: fewer labels first, then by label values in turn;
// label names break what ties remain.
func compareSamples(a, b Sample) int {
	if c := cmp.Compare(len(a.Labels), len(b.Labels)); c != 0 {
		return c
	}
	for i := range a.Labels {
		if c := strings.Compare(a.Labels[i].Value, b.Labels[i].Value); c != 0 {
			return c
		}
	}
	for i := range a.Labels {
		if c := strings.Compare(a.Labels[i].Name, b.Labels[i].Name); c != 0 {
			return c
		}
	}
	return 0
}

var (
	escapeHelp       = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	escapeLabelValue = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
)

func formatLabels(labels []Label) string {
	var b strings.Builder
	for i, l := range labels {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(l.Name + `="` + escapeLabelValue.Replace(l.Value) + `"`)
	}
	return b.String()
}

// FormatValue spells a sample's value as client_golang does: the shortest
// 'g' form that reads back exactly, 0 for negative zero, NaN, +Inf, -Inf.
func FormatValue(v float64) string {
	switch {
	case v == 0:
		return "0"
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, +1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// validMetricName: [a-zA-Z_:][a-zA-Z0-9_:]*.
func validMetricName(name string) bool {
	if name == "" {
		return false
	}
	for i, c := range []byte(name) {
		if !(c == '_' || c == ':' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// validLabelName: [a-zA-Z_][a-zA-Z0-9_]*, and not starting with __
// (reserved for Prometheus's own labels).
func validLabelName(name string) bool {
	if name == "" || strings.HasPrefix(name, "__") {
		return false
	}
	for i, c := range []byte(name) {
		if !(c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}
