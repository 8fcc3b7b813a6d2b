package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"text/tabwriter"
)

// TestStreamTable: a table of up to tableLead rows prints byte for byte as
// text/tabwriter prints it (what `cassettes show` printed before it
// streamed); past that, rows print as they come, and a wider cell widens
// its column from its row on, never shifting the rows above.
func TestStreamTable(t *testing.T) {
	rows := func(n int, wide int) [][]string {
		out := [][]string{{"SEQ", "METHOD", "URL", "NOTES"}}
		for i := range n {
			url := fmt.Sprintf("https://api.test/%d", i)
			if i == wide {
				url += strings.Repeat("x", 40)
			}
			out = append(out, []string{fmt.Sprint(i + 1), "GET", url, map[bool]string{true: "incomplete:1/2B", false: ""}[i%3 == 0]})
		}
		return out
	}
	tabwriterOf := func(rs [][]string) string {
		var b bytes.Buffer
		tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		for _, r := range rs {
			fmt.Fprintln(tw, strings.Join(r, "\t"))
		}
		tw.Flush()
		return b.String()
	}
	streamed := func(rs [][]string) string {
		var b bytes.Buffer
		st := newStreamTable(&b, rs[0]...)
		for _, r := range rs[1:] {
			st.row(r...)
		}
		if err := st.flush(); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	for _, n := range []int{0, 1, 7, tableLead} {
		rs := rows(n, n/2)
		if got, want := streamed(rs), tabwriterOf(rs); got != want {
			t.Errorf("%d rows:\n%s\nwant (tabwriter):\n%s", n, got, want)
		}
	}
	// Past the lead: the rows before the wide one keep their layout.
	rs := rows(tableLead+10, tableLead+5)
	lines := strings.Split(streamed(rs), "\n")
	lead := strings.Split(tabwriterOf(rs[:tableLead+1]), "\n")
	for i := range tableLead + 5 {
		if i < len(lead)-1 && lines[i] != lead[i] {
			t.Fatalf("line %d shifted by a later, wider row:\n%q\nwant\n%q", i, lines[i], lead[i])
		}
	}
	if !strings.Contains(lines[tableLead+6], strings.Repeat("x", 40)+"  ") {
		t.Errorf("the wide row is not padded to its own width: %q", lines[tableLead+6])
	}
}
