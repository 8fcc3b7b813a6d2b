// Package wsframe reads and writes WebSocket frames (RFC 6455, section 5)
// on a byte stream that something else carries: the proxy taps the two
// directions of a tunnelled WebSocket to record its messages, and speaks
// the server's side of one in replay. WebSocket libraries (gorilla/websocket,
// coder/websocket) own a connection end to end and expose messages, not a
// way to parse bytes that pass by in both directions; this package does
// only that, with every length bounded.
package wsframe

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Opcodes.
const (
	OpContinuation = 0x0
	OpText         = 0x1
	OpBinary       = 0x2
	OpClose        = 0x8
	OpPing         = 0x9
	OpPong         = 0xA
)

// Message is one whole message (data frames joined) or one control frame.
type Message struct {
	Op   byte // OpText, OpBinary, OpClose, OpPing, OpPong
	Data []byte
}

// ErrTooLarge is returned for a message over the reader's bound.
var ErrTooLarge = errors.New("websocket message over the size bound")

// Reader turns the bytes of one direction into messages. Feed it what
// passes, in order; it keeps what does not yet make a whole frame.
type Reader struct {
	Max  int // largest message kept; 0: 16 MiB
	buf  []byte
	op   byte   // the fragmented message's opcode, 0 when none is open
	frag []byte // its data so far
}

// Feed adds bytes and returns the messages they complete. After an error
// the stream cannot be followed any further.
func (r *Reader) Feed(p []byte) ([]Message, error) {
	max := r.Max
	if max <= 0 {
		max = 16 << 20
	}
	r.buf = append(r.buf, p...)
	var out []Message
	for {
		f, n, err := parseFrame(r.buf, max)
		if err != nil {
			return out, err
		}
		if n == 0 {
			break // need more bytes
		}
		r.buf = r.buf[n:]
		switch {
		case f.op >= OpClose: // control frames are never fragmented and may come between fragments
			if !f.fin || len(f.payload) > 125 {
				return out, errors.New("websocket: invalid control frame")
			}
			out = append(out, Message{Op: f.op, Data: f.payload})
		case f.op == OpContinuation:
			if r.op == 0 {
				return out, errors.New("websocket: continuation frame with no message open")
			}
			if len(r.frag)+len(f.payload) > max {
				return out, ErrTooLarge
			}
			r.frag = append(r.frag, f.payload...)
			if f.fin {
				out = append(out, Message{Op: r.op, Data: r.frag})
				r.op, r.frag = 0, nil
			}
		case f.op == OpText || f.op == OpBinary:
			if r.op != 0 {
				return out, errors.New("websocket: new message inside a fragmented one")
			}
			if f.fin {
				out = append(out, Message{Op: f.op, Data: f.payload})
			} else {
				r.op, r.frag = f.op, f.payload
			}
		default:
			return out, fmt.Errorf("websocket: reserved opcode %#x", f.op)
		}
	}
	if len(r.buf) == 0 {
		r.buf = nil // let a large frame's buffer go
	}
	return out, nil
}

type frame struct {
	fin     bool
	op      byte
	payload []byte // unmasked, a copy
}

// parseFrame reads one frame from the front of b; n is 0 when b holds
// only part of one.
func parseFrame(b []byte, max int) (f frame, n int, err error) {
	if len(b) < 2 {
		return f, 0, nil
	}
	if b[0]&0x70 != 0 {
		return f, 0, errors.New("websocket: reserved bits set (an extension the proxy did not negotiate)")
	}
	f.fin = b[0]&0x80 != 0
	f.op = b[0] & 0x0F
	masked := b[1]&0x80 != 0
	length := uint64(b[1] & 0x7F)
	pos := 2
	switch length {
	case 126:
		if len(b) < pos+2 {
			return f, 0, nil
		}
		length = uint64(binary.BigEndian.Uint16(b[pos:]))
		pos += 2
	case 127:
		if len(b) < pos+8 {
			return f, 0, nil
		}
		length = binary.BigEndian.Uint64(b[pos:])
		pos += 8
	}
	if length > uint64(max) {
		return f, 0, ErrTooLarge
	}
	var key [4]byte
	if masked {
		if len(b) < pos+4 {
			return f, 0, nil
		}
		copy(key[:], b[pos:pos+4])
		pos += 4
	}
	if uint64(len(b)-pos) < length {
		return f, 0, nil
	}
	end := pos + int(length)
	f.payload = append([]byte(nil), b[pos:end]...)
	if masked {
		for i := range f.payload {
			f.payload[i] ^= key[i%4]
		}
	}
	return f, end, nil
}

// AppendFrame appends one unmasked, unfragmented frame (a server's).
func AppendFrame(dst []byte, op byte, payload []byte) []byte {
	dst = append(dst, 0x80|op)
	switch n := len(payload); {
	case n < 126:
		dst = append(dst, byte(n))
	case n <= 0xFFFF:
		dst = append(dst, 126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	default:
		dst = append(dst, 127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	return append(dst, payload...)
}

// CloseFrame is a close frame's payload: the status code and a reason.
func CloseFrame(code uint16, reason string) []byte {
	if len(reason) > 123 {
		reason = reason[:123]
	}
	return append(binary.BigEndian.AppendUint16(nil, code), reason...)
}
