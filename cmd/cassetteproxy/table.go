package main

import (
	"bufio"
	"io"
	"strings"
	"unicode/utf8"
)

// streamTable prints a table as its rows come, laid out as text/tabwriter
// lays out a whole table (cells padded to their column's width plus two
// spaces, the last column unpadded): the first tableLead rows are held to
// size the columns, later rows go out at once and widen a column only
// when they must. A table of up to tableLead rows is byte for byte
// tabwriter's.
type streamTable struct {
	w      *bufio.Writer
	widths []int
	held   [][]string // rows before the widths are set
	live   bool       // the widths are set: rows go out as they come
}

// tableLead is how many rows size the columns before any is printed.
const tableLead = 1000

func newStreamTable(w io.Writer, header ...string) *streamTable {
	t := &streamTable{w: bufio.NewWriterSize(w, 64<<10), widths: make([]int, len(header))}
	t.row(header...)
	return t
}

func (t *streamTable) row(cells ...string) {
	for i, c := range cells[:len(cells)-1] {
		t.widths[i] = max(t.widths[i], utf8.RuneCountInString(c))
	}
	if t.live {
		t.print(cells)
		return
	}
	t.held = append(t.held, cells)
	if len(t.held) > tableLead {
		t.release()
	}
}

func (t *streamTable) release() {
	for _, r := range t.held {
		t.print(r)
	}
	t.held, t.live = nil, true
}

func (t *streamTable) print(cells []string) {
	last := len(cells) - 1
	for i, c := range cells[:last] {
		t.w.WriteString(c)
		t.w.WriteString(strings.Repeat(" ", t.widths[i]-utf8.RuneCountInString(c)+2))
	}
	t.w.WriteString(cells[last])
	t.w.WriteByte('\n')
}

// flush prints what is held and writes everything out.
func (t *streamTable) flush() error {
	t.release()
	return t.w.Flush()
}
