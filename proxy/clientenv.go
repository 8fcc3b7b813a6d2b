package proxy

// ClientEnv lists the environment variables that point HTTP clients at a
// proxy and make them trust its CA. bundlePath holds the system roots plus
// the CA (for variables that replace the trust store); caPath is the CA
// alone (for NODE_EXTRA_CA_CERTS, which adds to Node's own roots).
// noProxy is kept as given: empty means every request goes through.
func ClientEnv(proxyURL, bundlePath, caPath, noProxy string) [][2]string {
	return [][2]string{
		{"HTTP_PROXY", proxyURL},
		{"HTTPS_PROXY", proxyURL},
		{"http_proxy", proxyURL},
		{"https_proxy", proxyURL},
		{"NO_PROXY", noProxy},
		{"no_proxy", noProxy},
		{"SSL_CERT_FILE", bundlePath},      // OpenSSL, Go, Python ssl, Ruby
		{"REQUESTS_CA_BUNDLE", bundlePath}, // Python requests
		{"CURL_CA_BUNDLE", bundlePath},     // curl
		{"GIT_SSL_CAINFO", bundlePath},     // git
		{"NODE_EXTRA_CA_CERTS", caPath},    // Node adds this to its roots
		{"NODE_USE_ENV_PROXY", "1"},        // Node 24+: built-in fetch honours the proxy variables
	}
}
