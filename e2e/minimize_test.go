package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// minimizeAgent asks for two of the forty recorded resources and the list;
// when the list holds an item marked bug, it writes an empty report
// (failed / empty_output); without any of the three it exits 2.
const minimizeAgent = `set -u
a=$(curl -sS --fail "$U/r/5") || exit 2
b=$(curl -sS --fail "$U/r/21") || exit 2
l=$(curl -sS --fail "$U/list") || exit 2
case "$l" in *'"bug":true'*) : > report.json; exit 0 ;; esac
echo "$a $b" > report.json
`

// writeJSONFile rewrites a fixture file through a map.
func editJSON(t *testing.T, path string, edit func(map[string]any)) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	out, _ := json.MarshalIndent(m, "", "  ")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// fortyInteractionFixture records 39 resources and a 20-item list through
// the proxy and exports them as a fixture whose agent fails with
// empty_output because of one list item.
func fortyInteractionFixture(t *testing.T, e *env) string {
	t.Helper()
	up := newUpstream(t, false, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/list" {
			var items []string
			for i := range 20 {
				bug := ""
				if i == 13 {
					bug = `,"bug":true`
				}
				items = append(items, fmt.Sprintf(`{"id":%d,"title":"item %d"%s}`, i, i, bug))
			}
			fmt.Fprintf(w, `{"items":[%s],"total":20}`, strings.Join(items, ","))
			return
		}
		fmt.Fprintf(w, `{"path":%q}`, r.URL.Path)
	}))
	p := e.serve("--mode", "record", "--cassette", "forty")
	c := e.client(p)
	for i := range 39 {
		do(t, c, "GET", fmt.Sprintf("%s/r/%d", up.URL, i), "")
	}
	do(t, c, "GET", up.URL+"/list", "")
	p.stop()
	fx := filepath.Join(e.dir, "fx")
	if _, errs, code := e.cli("export", "--cassette", "forty", "--out", fx); code != 0 {
		t.Fatal(errs)
	}
	os.WriteFile(filepath.Join(fx, "agent.sh"), []byte(minimizeAgent), 0o755)
	editJSON(t, filepath.Join(fx, "input.json"), func(m map[string]any) {
		m["command"] = []string{"sh", "${FIXTURE_DIR}/agent.sh"}
		m["env"] = map[string]string{"U": up.URL}
		m["mode"] = "replay"
	})
	os.WriteFile(filepath.Join(fx, "expected.json"), []byte(`{"artifacts": [{"path": "report.json"}]}`), 0o644)
	up.Close() // replays never need it
	return fx
}

type toolCassettes struct {
	Interactions []struct {
		Request  struct{ URL string }
		Response struct {
			Body struct {
				JSON json.RawMessage `json:"json"`
			} `json:"body"`
		} `json:"response"`
	} `json:"interactions"`
}

func readCassettes(t *testing.T, dir string) toolCassettes {
	t.Helper()
	var tc toolCassettes
	data, err := os.ReadFile(filepath.Join(dir, "tool_cassettes.json"))
	if err != nil || json.Unmarshal(data, &tc) != nil {
		t.Fatalf("%s: %v", dir, err)
	}
	return tc
}

// TestMinimize: a fixture of 40 interactions where 3 matter minimizes to
// those 3 with the same verdict (failed / empty_output), and its 20-item
// list to the one item that causes the failure; the minimized fixture
// replays to the same verdict; the store the user points at is untouched.
func TestMinimize(t *testing.T) {
	e := newEnv(t)
	fx := fortyInteractionFixture(t, e)
	out, errs, code := e.cli("replay", fx)
	if v := parseVerdict(t, out); code != 3 || v.Status != "failed" || v.FailureClass != "empty_output" {
		t.Fatalf("the fixture's own verdict: exit %d %+v\n%s", code, v, errs)
	}
	runsBefore, _, _ := e.cli("runs", "ls", "--json")

	min := filepath.Join(e.dir, "fx-min")
	out, errs, code = e.cli("minimize", fx, "--out", min)
	if code != 0 {
		t.Fatalf("minimize: exit %d\n%s\n%s", code, out, errs)
	}
	for _, want := range []string{"verdict failed/empty_output kept in ", "before: 40 interactions", "after:  3 interactions", "$.items: 20 -> 1 elements"} {
		if !strings.Contains(out, want) {
			t.Fatalf("minimize output lacks %q:\n%s", want, out)
		}
	}
	tc := readCassettes(t, min)
	var urls []string
	for _, in := range tc.Interactions {
		urls = append(urls, in.Request.URL[strings.LastIndex(in.Request.URL, "/"):])
	}
	if strings.Join(urls, " ") != "/5 /21 /list" {
		t.Fatalf("kept %v", urls)
	}
	if list := string(tc.Interactions[2].Response.Body.JSON); !strings.Contains(list, `"bug": true`) || strings.Count(list, `"id"`) != 1 {
		t.Fatalf("list not shrunk to the bug item: %s", list)
	}
	if _, err := os.Stat(filepath.Join(min, "agent.sh")); err != nil {
		t.Fatal("the fixture's other files were not copied")
	}
	out, errs, code = e.cli("replay", min)
	if v := parseVerdict(t, out); code != 3 || v.Status != "failed" || v.FailureClass != "empty_output" {
		t.Fatalf("the minimized fixture's verdict: exit %d %+v\n%s", code, v, errs)
	}
	// Candidate replays ran against a scratch store.
	if runsAfter, _, _ := e.cli("runs", "ls", "--json"); strings.Count(runsAfter, `"run_id"`) != strings.Count(runsBefore, `"run_id"`)+1 {
		t.Fatalf("minimize wrote run records to the user's store:\n%s", runsAfter)
	}

	// A replay budget: the best so far is written, and it says so.
	bounded := filepath.Join(e.dir, "fx-bounded")
	out, errs, code = e.cli("minimize", fx, "--out", bounded, "--max-replays", "8")
	if code != 0 || !strings.Contains(errs, "stopped at --max-replays 8") {
		t.Fatalf("bounded: exit %d\n%s\n%s", code, out, errs)
	}
	if n := len(readCassettes(t, bounded).Interactions); n < 3 || n >= 40 {
		t.Fatalf("bounded: %d interactions", n)
	}
	out, _, _ = e.cli("replay", bounded)
	if v := parseVerdict(t, out); v.FailureClass != "empty_output" {
		t.Fatalf("bounded fixture's verdict: %+v", v)
	}
}

// TestMinimizeBadInput: a fixture whose verdict changes between two
// identical replays stops with a message naming both verdicts; an --out
// that is not empty, and a corrupt fixture, are one line.
func TestMinimizeBadInput(t *testing.T) {
	e := newEnv(t)
	fx := filepath.Join(e.dir, "flaky")
	if out, err := exec.Command("cp", "-r", "../examples/fixtures/missing_artifact_ref", fx).CombinedOutput(); err != nil {
		t.Fatalf("cp: %s", out)
	}
	state := t.TempDir()
	// Passes, then fails, then passes...: the flip is the state file.
	editJSON(t, filepath.Join(fx, "input.json"), func(m map[string]any) {
		m["command"] = []string{"sh", "-c", `if [ -e "$STATE/flip" ]; then rm "$STATE/flip"; exit 1; fi; touch "$STATE/flip"; sh "$0"`, "${FIXTURE_DIR}/../agent.sh"}
		m["env"].(map[string]any)["STATE"] = state
	})
	if out, err := exec.Command("cp", "../examples/agent/agent.sh", filepath.Join(e.dir, "agent.sh")).CombinedOutput(); err != nil {
		t.Fatalf("cp: %s", out)
	}
	_, errs, code := e.cli("minimize", fx, "--out", filepath.Join(e.dir, "out"))
	lines := strings.Split(strings.TrimSpace(errs), "\n")
	if last := lines[len(lines)-1]; code != 1 || !strings.HasPrefix(last, "cassetteproxy: fixture "+fx) ||
		!strings.Contains(last, "two identical replays reached different verdicts (passed, then failed/nonzero_exit)") {
		t.Fatalf("nondeterministic: exit %d %q", code, errs)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "out")); err == nil {
		t.Fatal("a nondeterministic fixture was written")
	}

	full := t.TempDir()
	os.WriteFile(filepath.Join(full, "x"), nil, 0o644)
	if _, errs, code := e.cli("minimize", fx, "--out", full); code != 1 || !strings.Contains(errs, "exists and is not empty") {
		t.Fatalf("--out not empty: exit %d %q", code, errs)
	}
	os.WriteFile(filepath.Join(fx, "expected.json"), []byte(`{"status": 7}`), 0o644)
	if _, errs, code := e.cli("minimize", fx); code != 1 || !strings.Contains(errs, filepath.Join(fx, "expected.json")) {
		t.Fatalf("corrupt fixture: exit %d %q", code, errs)
	}
}
