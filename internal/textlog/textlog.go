// Package textlog writes log/slog's text format (slog.TextHandler's, byte
// for byte) faster for the records a proxy logs once per request: a
// message and a few attributes of plain kinds (strings, integers, floats,
// booleans). It formats them straight into a pooled buffer; any other
// record, and every handler made by WithAttrs or WithGroup, goes to a
// slog.TextHandler on the same writer. slog.TextHandler's generic path
// (handle state, per-attribute dispatch, its buffer pool) costs twice as
// much: BenchmarkRequestLine, 5,987 instructions a line against 11,711,
// ~10% of a replayed request's own work (BenchmarkHandleReplayHit, 48.5k
// instructions without a log line).
package textlog

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"
)

// New returns a handler writing slog's text format to w. With options
// that change the format (AddSource, ReplaceAttr) it is slog.TextHandler
// itself.
func New(w io.Writer, opts *slog.HandlerOptions) slog.Handler {
	if opts == nil {
		opts = &slog.HandlerOptions{}
	}
	mu := new(sync.Mutex)
	std := slog.NewTextHandler(&lockedWriter{mu: mu, w: w}, opts)
	if opts.AddSource || opts.ReplaceAttr != nil {
		return std
	}
	var level slog.Leveler = slog.LevelInfo
	if opts.Level != nil {
		level = opts.Level
	}
	return &handler{level: level, mu: mu, w: w, std: std}
}

type handler struct {
	level slog.Leveler
	mu    *sync.Mutex // shared with std's writer: one line at a time, whoever formats it
	w     io.Writer
	std   slog.Handler
}

// lockedWriter serializes the slog.TextHandler's writes with the fast path's.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (h *handler) Enabled(_ context.Context, level slog.Level) bool {
	return level >= h.level.Level()
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler { return h.std.WithAttrs(attrs) }
func (h *handler) WithGroup(name string) slog.Handler       { return h.std.WithGroup(name) }

var buffers = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	bp := buffers.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= 16<<10 { // a rare long line does not stay pinned in the pool
			buffers.Put(bp)
		}
	}()
	line, ok := appendRecord((*bp)[:0], &r)
	*bp = line[:0]
	if !ok {
		return h.std.Handle(ctx, r)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := h.w.Write(line)
	return err
}

// appendRecord appends r as slog.TextHandler writes it (with no options),
// or reports false for a record it leaves to slog: non-ASCII text, an
// empty key, a value of another kind.
func appendRecord(b []byte, r *slog.Record) ([]byte, bool) {
	ok := true
	if !r.Time.IsZero() {
		b = append(b, "time="...)
		b = appendRFC3339Millis(b, r.Time.Round(0))
		b = append(b, ' ')
	}
	b = append(b, "level="...)
	if b, ok = appendString(b, r.Level.String()); !ok {
		return b, false
	}
	b = append(b, " msg="...)
	if b, ok = appendString(b, r.Message); !ok {
		return b, false
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "" {
			ok = false
			return false
		}
		b = append(b, ' ')
		if b, ok = appendString(b, a.Key); !ok {
			return false
		}
		b = append(b, '=')
		switch v := a.Value; v.Kind() {
		case slog.KindString:
			b, ok = appendString(b, v.String())
		case slog.KindInt64:
			b = strconv.AppendInt(b, v.Int64(), 10)
		case slog.KindUint64:
			b = strconv.AppendUint(b, v.Uint64(), 10)
		case slog.KindFloat64:
			b = strconv.AppendFloat(b, v.Float64(), 'g', -1, 64)
		case slog.KindBool:
			b = strconv.AppendBool(b, v.Bool())
		default:
			ok = false
		}
		return ok
	})
	return append(b, '\n'), ok
}

// appendString appends s quoted as slog's text format quotes it: when it
// is empty or has a space, '=', '"' or a control character. Text with
// bytes past ASCII is not handled (slog's rules for it follow Unicode).
func appendString(b []byte, s string) ([]byte, bool) {
	quote := len(s) == 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 0x80:
			return b, false
		case c == ' ', c == '=', c == '"', c < 0x20:
			quote = true
		}
	}
	if quote {
		return appendQuotedASCII(b, s), true
	}
	return append(b, s...), true
}

// appendQuotedASCII is strconv.AppendQuote for ASCII text, without its
// per-rune Unicode tables.
func appendQuotedASCII(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\a':
			b = append(b, `\a`...)
		case '\b':
			b = append(b, `\b`...)
		case '\f':
			b = append(b, `\f`...)
		case '\n':
			b = append(b, `\n`...)
		case '\r':
			b = append(b, `\r`...)
		case '\t':
			b = append(b, `\t`...)
		case '\v':
			b = append(b, `\v`...)
		default:
			if c < ' ' || c == 0x7f {
				b = append(b, '\\', 'x', hex[c>>4], hex[c&0xf])
			} else {
				b = append(b, c)
			}
		}
	}
	return append(b, '"')
}

// appendRFC3339Millis is slog's time format: RFC 3339 with exactly three
// digits of milliseconds (truncated, not rounded).
func appendRFC3339Millis(b []byte, t time.Time) []byte {
	const prefixLen = len("2006-01-02T15:04:05.000")
	n := len(b)
	// RFC3339Nano trims trailing zeros: a tenth of a millisecond more
	// makes four digits, the fourth dropped.
	t = t.Truncate(time.Millisecond).Add(time.Millisecond / 10)
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b[:n+prefixLen], b[n+prefixLen+1:]...)
}
