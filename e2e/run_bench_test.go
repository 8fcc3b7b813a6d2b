package e2e

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

// BenchmarkRunFirstByte measures what `cassetteproxy run` adds to an
// agent's start: the time from starting the process to the first byte of
// the child's output, which it writes when the first response byte reaches
// it through the proxy (curl -s URL prints the body as it arrives). The
// baseline starts curl directly against the upstream.
//
//	go test -run XXX -bench RunFirstByte -benchtime 20x ./e2e/
func BenchmarkRunFirstByte(b *testing.B) {
	curlPath, err := exec.LookPath("curl")
	if err != nil {
		b.Skip("curl is not installed")
	}
	up := newUpstream(&testing.T{}, false, itemsHandler())
	defer up.Close()
	target := up.URL + "/items/1"
	dir := b.TempDir()
	env := append(os.Environ(), "CASSETTEPROXY_DB="+dir+"/cassettes.db", "CASSETTEPROXY_HOME="+dir+"/home", "CASSETTEPROXY_LOG_FORMAT=json")

	firstByte := func(b *testing.B, argv []string) time.Duration {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = env
		out, err := cmd.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		var one [1]byte
		if _, err := out.Read(one[:]); err != nil {
			b.Fatalf("%v: no output: %v", argv, err)
		}
		d := time.Since(start)
		if err := cmd.Wait(); err != nil {
			b.Fatalf("%v: %v", argv, err)
		}
		return d
	}
	// record the cassette the replay variants use
	firstByte(b, []string{binary, "run", "--mode", "record", "--cassette", "bench", "--", curlPath, "-s", target})

	cases := []struct {
		name string
		argv []string
	}{
		{"direct", []string{curlPath, "-s", target}},
		{"run-record", []string{binary, "run", "--mode", "record", "--cassette", "bench-rec", "--", curlPath, "-s", target}},
		{"run-strict", []string{binary, "run", "--mode", "strict", "--cassette", "bench", "--", curlPath, "-s", target}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			var total time.Duration
			for i := 0; i < b.N; i++ {
				total += firstByte(b, c.argv)
			}
			b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms-to-first-byte")
		})
	}
}
