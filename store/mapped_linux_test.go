package store

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// mappedRSS is this process's resident KiB of the mapping of path.
func mappedRSS(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skip("no /proc/self/smaps")
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

func TestReleaseMappedDropsReadPagesKeepsData(t *testing.T) {
	s := openTest(t)
	path, _ := filepath.Abs(s.Path())
	var ins []Interaction
	for i := range 3000 {
		in := sample(0, i, fmt.Sprint("GET /", i))
		in.Response.Body = bytes.Repeat(fmt.Appendf(nil, "%06d", i), 100) // 600 B, compressible, unique
		ins = append(ins, in)
	}
	if err := s.WriteCassette("c", ins, false); err != nil {
		t.Fatal(err)
	}
	touch := func() { // read every value through the map, as a commit or a load does
		if err := s.db.View(func(tx *bolt.Tx) error {
			return cassetteBucket(tx, "c").Bucket(subInteractions).ForEach(func(_, v []byte) error { _ = v[len(v)-1]; return nil })
		}); err != nil {
			t.Fatal(err)
		}
	}
	touch()
	before := mappedRSS(t, path)
	if before < 256 {
		t.Fatalf("reading the cassette left only %d KiB of the map resident", before)
	}
	s.releaseMapped()
	if after := mappedRSS(t, path); after > before/4 {
		t.Fatalf("resident map after release: %d KiB, before %d KiB", after, before)
	}
	got, err := s.Interactions("c") // reads again through the map, then releases
	if err != nil || len(got) != len(ins) || !bytes.Equal(got[2999].Response.Body, ins[2999].Response.Body) {
		t.Fatalf("after release: %d interactions, %v", len(got), err)
	}
}
