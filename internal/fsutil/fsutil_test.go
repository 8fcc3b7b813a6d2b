package fsutil

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	for _, tc := range []struct {
		data string
		mode os.FileMode
	}{{"first", 0o600}, {"second, longer", 0o644}} {
		if err := WriteFileAtomic(path, []byte(tc.data), tc.mode); err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(path)
		info, _ := os.Stat(path)
		if string(got) != tc.data || info.Mode().Perm() != tc.mode {
			t.Fatalf("got %q mode %04o, want %q %04o", got, info.Mode().Perm(), tc.data, tc.mode)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
	if err := WriteFileAtomic(filepath.Join(dir, "missing", "f"), nil, 0o644); err == nil {
		t.Fatal("writing into a missing folder succeeded")
	}
}
