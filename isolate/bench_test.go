package isolate

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
)

// BenchmarkStart: making a namespace, starting `true` in it and waiting
// for it, against starting `true` plainly.
func BenchmarkStart(b *testing.B) {
	truePath, err := exec.LookPath("true")
	if err != nil {
		b.Skip(err)
	}
	b.Run("plain", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			cmd := &exec.Cmd{Path: truePath, Args: []string{"true"}, SysProcAttr: &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}}
			if err := cmd.Run(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("isolated", func(b *testing.B) {
		if err := Check(); err != nil {
			b.Skip(err)
		}
		for i := 0; i < b.N; i++ {
			cmd := &exec.Cmd{Path: truePath, Args: []string{"true"}, Env: os.Environ(), SysProcAttr: &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}}
			n, err := Wrap(cmd, "127.0.0.1:3128")
			if err != nil {
				b.Fatal(err)
			}
			ln, err := n.Start()
			if err != nil {
				b.Fatal(err)
			}
			if err := cmd.Wait(); err != nil {
				b.Fatal(err)
			}
			n.Exit()
			ln.Close()
		}
	})
}
