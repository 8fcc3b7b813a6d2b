package store

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// procStatus returns the named fields of /proc/self/status in KiB
// (VmRSS, VmHWM, RssAnon, RssFile); nil where there is no /proc.
func procStatus(names ...string) map[string]int {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return nil
	}
	defer f.Close()
	out := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		for _, n := range names {
			if k == n {
				out[n], _ = strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			}
		}
	}
	return out
}

// writeBytes is this process's write_bytes from /proc/self/io: what it sent
// to the storage layer (0 where there is no /proc).
func writeBytes() int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "write_bytes:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

// mappedKiB is this process's resident KiB of its mappings of path
// (/proc/self/smaps), -1 where there is no /proc.
func mappedKiB(path string) int {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return -1
	}
	defer f.Close()
	total, in := 0, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if fields := strings.Fields(line); len(fields) >= 5 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":") {
			in = len(fields) >= 6 && fields[len(fields)-1] == path
			continue
		}
		if in && strings.HasPrefix(line, "Rss:") {
			kb, _ := strconv.Atoi(strings.Fields(line)[1])
			total += kb
		}
	}
	return total
}

// liveHeap collects and returns the live heap (/gc/heap/live) and the heap
// in use (MemStats.HeapInuse), in bytes.
func liveHeap() (live, inuse uint64) {
	runtime.GC()
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return s[0].Value.Uint64(), ms.HeapInuse
}

// lastTxID is the id of the store's last committed transaction.
func lastTxID(s *Store) int {
	var id int
	_ = s.db.View(func(tx *bolt.Tx) error { id = tx.ID(); return nil })
	return id
}

const mib = 1 << 20

// longBody is a ~1.1 KB JSON answer; unique makes it differ for every n.
func longBody(pool []string, n int, unique bool) []byte {
	if !unique {
		n = 0
	}
	return fmt.Appendf(nil, `{"id":"item-%09d","items":[{"name":"a","note":%q},{"name":"b","note":%q}],"page":%d}`,
		n, pool[n%len(pool)], pool[(n/len(pool))%len(pool)], n)
}

// BenchmarkLongRecordingMemory records b.N interactions of ~1 KB through one
// Recorder, as a proxy that records for a long time does, and reports what
// the process holds afterwards: the live heap after a collection, the
// store's mapped pages resident in this process, the process's RSS, and the
// bytes written to disk per commit. "repeated": 4 requests answered with
// one body again and again (the load harness's record phase); "unique":
// every request and body new (an agent's varied tool calls). Run each
// alone, so that RSS is its own:
//
//	go test -run '^$' -bench 'LongRecordingMemory/unique' -benchtime 1000000x ./store/
func BenchmarkLongRecordingMemory(b *testing.B) {
	for _, unique := range []bool{false, true} {
		name := map[bool]string{false: "repeated", true: "unique"}[unique]
		b.Run(name, func(b *testing.B) { longRecording(b, unique) })
	}
}

func longRecording(b *testing.B, unique bool) {
	path, _ := filepath.Abs(filepath.Join(b.TempDir(), "long.db"))
	s, err := Open(path, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	pool := make([]string, 97)
	for i := range pool {
		pool[i] = prose(rng, 450)
	}
	rec := s.NewRecorder(RecorderOptions{})
	tx0, w0 := lastTxID(s), writeBytes()
	report := func(n int, final bool) {
		if err := rec.Flush(); err != nil {
			b.Fatal(err)
		}
		live, inuse := liveHeap()
		st := procStatus("VmRSS", "VmHWM", "RssAnon", "RssFile")
		commits := max(1, lastTxID(s)-tx0)
		perCommit := float64(writeBytes()-w0) / float64(commits)
		fi, _ := os.Stat(path)
		mapped := mappedKiB(path)
		b.Logf("%8d interactions: heap live %.1f MiB, in use %.1f MiB; map resident %.1f MiB; RSS %.1f MiB (anon %.1f, file %.1f), HWM %.1f MiB; %d commits, %.0f KiB written per commit; file %.0f MiB",
			n, float64(live)/mib, float64(inuse)/mib, float64(mapped)/1024, float64(st["VmRSS"])/1024,
			float64(st["RssAnon"])/1024, float64(st["RssFile"])/1024, float64(st["VmHWM"])/1024, commits, perCommit/1024, float64(fi.Size())/mib)
		if final {
			b.ReportMetric(float64(live)/mib, "heap-live-MiB")
			b.ReportMetric(float64(mapped)/1024, "map-rss-MiB")
			b.ReportMetric(float64(st["VmRSS"])/1024, "rss-MiB")
			b.ReportMetric(float64(st["VmHWM"])/1024, "hwm-MiB")
			b.ReportMetric(perCommit/1024, "write-KiB/commit")
			b.ReportMetric(float64(fi.Size())/float64(n), "file-B/interaction")
		}
	}
	workers := runtime.GOMAXPROCS(0)
	const step = 250_000
	b.ResetTimer()
	for done := 0; done < b.N; {
		n := min(step, b.N-done)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := done + w; i < done+n; i += workers {
					key := i
					if !unique {
						key = i % 4
					}
					url := fmt.Sprintf("https://api.example.com/items/%d", key)
					in := Interaction{Key: "GET " + url, RecordedAt: time.Unix(int64(i), 0), DurationMs: 3,
						Request: Request{Method: "GET", URL: url, Header: http.Header{"Accept": {"application/json"}}},
						Response: Response{Status: 200, Header: http.Header{"Content-Type": {"application/json"}},
							Body: longBody(pool, i, unique)}}
					if err := rec.Record("long", in); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		done += n
		report(done, done == b.N)
	}
	b.StopTimer()
	if err := rec.Close(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkReplayLoadMemory writes a cassette of b.N ~1 KB interactions,
// reopens the store, loads the cassette as replay does (Interactions) and
// reports what the load leaves resident: the live heap (the decoded
// cassette) and the store's mapped pages.
//
//	go test -run '^$' -bench 'ReplayLoadMemory' -benchtime 100000x ./store/
func BenchmarkReplayLoadMemory(b *testing.B) {
	path, _ := filepath.Abs(filepath.Join(b.TempDir(), "replay.db"))
	s, err := Open(path, Options{})
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	pool := make([]string, 97)
	for i := range pool {
		pool[i] = prose(rng, 450)
	}
	ins := make([]Interaction, 0, 10_000)
	for i := 0; i < b.N; i++ {
		url := fmt.Sprintf("https://api.example.com/items/%d", i)
		ins = append(ins, Interaction{Key: "GET " + url, RecordedAt: time.Unix(int64(i), 0), DurationMs: 3,
			Request: Request{Method: "GET", URL: url, Header: http.Header{"Accept": {"application/json"}}},
			Response: Response{Status: 200, Header: http.Header{"Content-Type": {"application/json"}},
				Body: longBody(pool, i, true)}})
		if len(ins) == cap(ins) || i == b.N-1 {
			if err := s.WriteCassette("big", ins, false); err != nil {
				b.Fatal(err)
			}
			ins = ins[:0]
		}
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	ins = nil
	s, err = Open(path, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	live0, _ := liveHeap()
	b.ResetTimer()
	got, err := s.Interactions("big")
	b.StopTimer()
	if err != nil || len(got) != b.N {
		b.Fatalf("%d interactions, %v", len(got), err)
	}
	live, _ := liveHeap()
	mapped := mappedKiB(path)
	fi, _ := os.Stat(path)
	st := procStatus("VmRSS", "RssAnon", "RssFile")
	b.Logf("%d interactions, file %.1f MiB: decoded %.1f MiB live; map resident %.1f MiB; RSS %.1f MiB (anon %.1f, file %.1f)",
		b.N, float64(fi.Size())/mib, float64(live-live0)/mib, float64(mapped)/1024,
		float64(st["VmRSS"])/1024, float64(st["RssAnon"])/1024, float64(st["RssFile"])/1024)
	b.ReportMetric(float64(live-live0)/mib, "decoded-MiB")
	b.ReportMetric(float64(mapped)/1024, "map-rss-MiB")
	b.ReportMetric(float64(fi.Size())/mib, "file-MiB")
	runtime.KeepAlive(got)
}

// BenchmarkReopen is the cost of one Store.reopen (what a recorder pays
// every reopenEvery, and a load once) on a store of 100k ~1 KB interactions.
func BenchmarkReopen(b *testing.B) {
	if !canReopen {
		b.Skip("the store never reopens here")
	}
	s, err := Open(filepath.Join(b.TempDir(), "reopen.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	pool := make([]string, 97)
	for i := range pool {
		pool[i] = prose(rng, 450)
	}
	for c := range 10 {
		ins := make([]Interaction, 10_000)
		for j := range ins {
			i := c*len(ins) + j
			url := fmt.Sprintf("https://api.example.com/items/%d", i)
			ins[j] = Interaction{Key: "GET " + url, RecordedAt: time.Unix(int64(i), 0),
				Request:  Request{Method: "GET", URL: url},
				Response: Response{Status: 200, Body: longBody(pool, i, true)}}
		}
		if err := s.WriteCassette("big", ins, false); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		if err := s.reopen(); err != nil {
			b.Fatal(err)
		}
	}
}
