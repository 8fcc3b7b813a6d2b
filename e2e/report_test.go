package e2e

import (
	"bytes"
	"encoding/json"
	"html"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// chromium finds headless Chromium (Debian's chromium package); CI
// installs it, elsewhere its absence skips the test.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed (.ci/run installs Debian's chromium package)")
	}
	t.Skip("chromium not installed: the report is not rendered")
	return ""
}

// headless runs Chromium headless on a page with a window of w x h and
// returns its stdout.
func headless(t *testing.T, bin string, w, h int, page string, args ...string) string {
	t.Helper()
	full := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--user-data-dir=" + t.TempDir(),
		"--window-size=" + strconv.Itoa(w) + "," + strconv.Itoa(h)}, args...)
	cmd := exec.Command(bin, append(full, "file://"+page)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, errb.String())
	}
	return out.String()
}

// probeScript, appended to a copy of the page, reports what the browser
// made of it: the layout width and the document's width (wider means a
// sideways scroll), and how many resources it fetched (the page must need
// none). The page itself has no script.
const probeScript = `<script>document.body.setAttribute("data-probe", JSON.stringify({w: innerWidth, sw: document.documentElement.scrollWidth, res: performance.getEntriesByType("resource").length}));</script>`

// TestMonitorHTMLInChromium: monitor writes index.html; headless Chromium
// loads it from file:// with nothing fetched, shows the failing gate in
// red, lays it out without sideways scrolling on a laptop and on a phone,
// and the page names the failing fixture's class and blocked request and
// the corrupt fixture's reason.
func TestMonitorHTMLInChromium(t *testing.T) {
	bin := chromium(t)
	e := newEnv(t)
	ex := copyExamples(t)
	root := filepath.Join(ex, "fixtures")
	// A fixture whose agent now tries a mutation, and a corrupt one.
	broken := filepath.Join(root, "broken")
	if out, err := exec.Command("cp", "-r", filepath.Join(root, "host_not_allowed"), broken).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	in, _ := os.ReadFile(filepath.Join(broken, "input.json"))
	in = bytes.Replace(in, []byte(`"fixture_id": "example-host-not-allowed"`), []byte(`"fixture_id": "example-broken"`), 1)
	in = bytes.Replace(in, []byte(`"env": {`), []byte(`"env": {"AGENT_BUG": "host_not_allowed", `), 1)
	os.WriteFile(filepath.Join(broken, "input.json"), in, 0o644)
	os.MkdirAll(filepath.Join(root, "corrupt"), 0o755)
	os.WriteFile(filepath.Join(root, "corrupt", "input.json"), []byte(`{"fixture_id": `), 0o644)
	// History for the strip: one failing replay, then a pass.
	e.cli("replay", filepath.Join(root, "empty_output"), "--", "sh", "-c", "exit 1")
	out := filepath.Join(e.dir, "report")
	if stdout, errs, code := e.cli("monitor", root, "--out", out); code != 1 {
		t.Fatalf("monitor: exit %d (want the gate to fail)\n%s\n%s", code, stdout, errs)
	}
	page := filepath.Join(out, "index.html")
	src, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	probe := filepath.Join(out, "probe.html")
	os.WriteFile(probe, bytes.Replace(src, []byte("</body>"), []byte(probeScript+"</body>"), 1), 0o644)

	for _, vp := range []struct {
		name string
		w, h int
	}{{"laptop", 1280, 900}, {"phone", 390, 844}} {
		dom := headless(t, bin, vp.w, vp.h, probe, "--dump-dom")
		m := regexp.MustCompile(`data-probe="([^"]*)"`).FindStringSubmatch(dom)
		if m == nil {
			t.Fatalf("%s: the page did not load (no probe result):\n%s", vp.name, dom)
		}
		var p struct{ W, SW, Res int }
		if err := json.Unmarshal([]byte(html.UnescapeString(m[1])), &p); err != nil {
			t.Fatal(err)
		}
		if p.Res != 0 || p.SW > p.W {
			t.Fatalf("%s: %+v (resources fetched, or wider than the window)", vp.name, p)
		}
		if vp.name == "phone" && p.W > 720 {
			t.Fatalf("phone: layout width %d does not reach the narrow layout", p.W)
		}
		text := html.UnescapeString(dom)
		for _, want := range []string{"GATE FAIL", `id="fx-example-broken"`, "host_not_allowed", "paste.example.net",
			`id="fx-corrupt"`, "unreadable", `class="dot failed"`, `class="dot passed"`} {
			if !strings.Contains(text, want) {
				t.Fatalf("%s: the rendered page lacks %q", vp.name, want)
			}
		}
	}

	// The laptop screenshot: the right size, and the gate badge in red.
	shot := filepath.Join(out, "index.png")
	headless(t, bin, 1280, 900, page, "--screenshot="+shot, "--hide-scrollbars")
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 1280 || b.Dy() != 900 {
		t.Fatalf("screenshot %v", b)
	}
	if n := countNear(img, image.Rect(0, 0, 600, 200), color.RGBA{0xcf, 0x22, 0x2e, 0xff}); n < 500 {
		t.Fatalf("the failing gate's red badge is not on the screenshot (%d red pixels)", n)
	}
}

// countNear counts the pixels of r within a small distance of c.
func countNear(img image.Image, r image.Rectangle, c color.RGBA) int {
	n := 0
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			pr, pg, pb, _ := img.At(x, y).RGBA()
			d := absDiff(pr>>8, uint32(c.R)) + absDiff(pg>>8, uint32(c.G)) + absDiff(pb>>8, uint32(c.B))
			if d < 24 {
				n++
			}
		}
	}
	return n
}

func absDiff(a, b uint32) uint32 {
	if a > b {
		return a - b
	}
	return b - a
}
