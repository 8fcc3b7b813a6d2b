package wsframe

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// clientFrame builds a masked frame as a client sends it.
func clientFrame(fin bool, op byte, payload []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	out := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		out = append(out, 0x80|byte(n))
	case n <= 0xFFFF:
		out = append(out, 0x80|126)
		out = binary.BigEndian.AppendUint16(out, uint16(n))
	default:
		out = append(out, 0x80|127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	key := [4]byte{1, 2, 3, 4}
	out = append(out, key[:]...)
	for i, c := range payload {
		out = append(out, c^key[i%4])
	}
	return out
}

func TestReaderMessages(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 70000)
	var stream []byte
	stream = append(stream, clientFrame(true, OpText, []byte(`{"a":1}`))...)
	stream = append(stream, clientFrame(false, OpText, []byte("hel"))...)
	stream = append(stream, clientFrame(true, OpPing, []byte("p"))...) // between fragments
	stream = append(stream, clientFrame(true, OpContinuation, []byte("lo"))...)
	stream = append(stream, AppendFrame(nil, OpBinary, big)...) // unmasked, 64-bit length
	stream = append(stream, AppendFrame(nil, OpText, bytes.Repeat([]byte("y"), 300))...)
	stream = append(stream, clientFrame(true, OpClose, CloseFrame(1000, "bye"))...)
	want := []Message{{OpText, []byte(`{"a":1}`)}, {OpPing, []byte("p")}, {OpText, []byte("hello")},
		{OpBinary, big}, {OpText, bytes.Repeat([]byte("y"), 300)}, {OpClose, CloseFrame(1000, "bye")}}

	for _, chunk := range []int{len(stream), 1, 7, 4096} { // whole, byte by byte, odd pieces
		var r Reader
		var got []Message
		for i := 0; i < len(stream); i += chunk {
			msgs, err := r.Feed(stream[i:min(i+chunk, len(stream))])
			if err != nil {
				t.Fatalf("chunk %d: %v", chunk, err)
			}
			got = append(got, msgs...)
		}
		if len(got) != len(want) {
			t.Fatalf("chunk %d: %d messages, want %d", chunk, len(got), len(want))
		}
		for i := range want {
			if got[i].Op != want[i].Op || !bytes.Equal(got[i].Data, want[i].Data) {
				t.Errorf("chunk %d: message %d = %d %.20q, want %d %.20q", chunk, i, got[i].Op, got[i].Data, want[i].Op, want[i].Data)
			}
		}
	}
}

func TestReaderRefusesBadStreams(t *testing.T) {
	cases := []struct {
		name   string
		stream []byte
		max    int
	}{
		{"too large", clientFrame(true, OpText, make([]byte, 200)), 100},
		{"too large fragmented", append(clientFrame(false, OpText, make([]byte, 60)), clientFrame(true, OpContinuation, make([]byte, 60))...), 100},
		{"reserved bits", []byte{0xC1, 0x00}, 0},
		{"reserved opcode", []byte{0x83, 0x00}, 0},
		{"lone continuation", clientFrame(true, OpContinuation, []byte("x")), 0},
		{"long control frame", clientFrame(true, OpPing, make([]byte, 126)), 0},
		{"fragmented control frame", clientFrame(false, OpPing, nil), 0},
		{"huge declared length", []byte{0x82, 127, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}, 0},
	}
	for _, tc := range cases {
		r := Reader{Max: tc.max}
		if _, err := r.Feed(tc.stream); err == nil {
			t.Errorf("%s: no error", tc.name)
		} else if tc.name[:3] == "too" && !errors.Is(err, ErrTooLarge) {
			t.Errorf("%s: %v, want ErrTooLarge", tc.name, err)
		}
	}
}

func TestAcceptKey(t *testing.T) {
	// RFC 6455, section 1.3.
	if got := AcceptKey("dGhlIHNhbXBsZSBub25jZQ=="); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatal(got)
	}
}

func FuzzReader(f *testing.F) {
	f.Add(clientFrame(true, OpText, []byte("hi")), 3)
	f.Add(AppendFrame(nil, OpBinary, make([]byte, 300)), 1)
	f.Add([]byte{0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0}, 5)
	f.Fuzz(func(t *testing.T, stream []byte, chunk int) {
		if chunk <= 0 {
			chunk = 1
		}
		r := Reader{Max: 1 << 16}
		for i := 0; i < len(stream); i += chunk {
			msgs, err := r.Feed(stream[i:min(i+chunk, len(stream))])
			for _, m := range msgs {
				if len(m.Data) > 1<<16 {
					t.Fatalf("message of %d bytes over the bound", len(m.Data))
				}
			}
			if err != nil {
				return
			}
		}
	})
}
