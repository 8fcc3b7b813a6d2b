package proxy

import (
	"net/http"

	"github.com/cassetteproxy/cassetteproxy/internal/promtext"
)

// MetricsPath is where the proxy serves its own Prometheus metrics, on its
// own address (like /healthz): what a scrape needs to alert on a
// recording that was answered but never committed.
const MetricsPath = "/metrics"

// metricsHandler serves the proxy's metrics, read at scrape time from the
// counters the proxy keeps anyway: nothing is added to a request's path.
func (s *Server) metricsHandler() http.Handler {
	return promtext.Handler(s.metricFamilies)
}

// metricFamilies are the proxy's metrics now, labelled with its cassette
// and mode (tenants behind a Front are told apart by their cassettes).
func (s *Server) metricFamilies() []promtext.Family {
	labels := []promtext.Label{{Name: "cassette", Value: s.cfg.Cassette}, {Name: "mode", Value: string(s.cfg.Mode)}}
	lost, _ := s.RecordingLoss()
	return []promtext.Family{
		{Name: "cassetteproxy_recordings_lost_total", Type: promtext.Counter,
			Help:    "Recordings answered to the client but never committed to the store (disk full, I/O error).",
			Samples: []promtext.Sample{{Labels: labels, Value: float64(lost)}}},
		{Name: "cassetteproxy_interactions", Type: promtext.Gauge,
			Help:    "Interactions the cassette holds now: in record mode committed to the store, else in the index the proxy answers from (live mode adds to it).",
			Samples: []promtext.Sample{{Labels: labels, Value: float64(s.liveCount())}}},
	}
}
