package proxy

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// MetricsPath is where the proxy serves its own Prometheus metrics, on its
// own address (like /healthz): what a scrape needs to alert on a
// recording that was answered but never committed.
const MetricsPath = "/metrics"

// metricsHandler serves the proxy's metrics, read at scrape time from the
// counters the proxy keeps anyway: nothing is added to a request's path.
func (s *Server) metricsHandler() http.Handler {
	return promhttp.HandlerFor(s.metricsRegistry(), promhttp.HandlerOpts{})
}

// metricsRegistry holds the proxy's metrics, labelled with its cassette and
// mode (tenants behind a Front are told apart by their cassettes).
func (s *Server) metricsRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	labels := prometheus.Labels{"cassette": s.cfg.Cassette, "mode": string(s.cfg.Mode)}
	reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "cassetteproxy_recordings_lost_total", ConstLabels: labels,
			Help: "Recordings answered to the client but never committed to the store (disk full, I/O error)."},
			func() float64 { n, _ := s.RecordingLoss(); return float64(n) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "cassetteproxy_interactions", ConstLabels: labels,
			Help: "Interactions the cassette holds now: in record mode committed to the store, else in the index the proxy answers from (live mode adds to it)."},
			func() float64 { return float64(s.liveCount()) }),
	)
	return reg
}
