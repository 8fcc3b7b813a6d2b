package match

import (
	"slices"
	"strconv"
)

// A sketch summarizes the content of a normalized request (query pairs,
// keyed headers, body leaves) as the sketchK smallest of its feature
// hashes (bottom-k MinHash) plus the number of features. Two sketches give
// an estimate of how many values differ between two requests, which ranks
// closest-miss candidates on a large cassette without re-parsing them.
// Sets of up to sketchK features are compared exactly.

const sketchK = 16

type sketch struct {
	min   [sketchK]uint64 // ascending, distinct; first n used
	n     uint8
	total uint32 // number of distinct features seen (approximately: duplicates beyond the sketch count twice)
}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func fnvString(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h
}

func fnvByte(h uint64, b byte) uint64 {
	h ^= uint64(b)
	return h * fnvPrime
}

func (s *sketch) add(h uint64) {
	// fnv's low entropy in a few bits does not matter here, but mix anyway.
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	i, found := slices.BinarySearch(s.min[:s.n], h)
	if found {
		return
	}
	s.total++
	if i >= sketchK {
		return
	}
	if int(s.n) < sketchK {
		s.n++
	}
	copy(s.min[i+1:s.n], s.min[i:s.n-1])
	s.min[i] = h
}

func (n *normReq) sketch() sketch {
	var s sketch
	pairs := func(tag byte, p []kv) {
		for _, x := range p {
			h := fnvByte(fnvOffset, tag)
			h = fnvString(h, x.k)
			h = fnvByte(h, 0)
			s.add(fnvString(h, x.v))
		}
	}
	pairs('q', n.query)
	pairs('h', n.header)
	switch {
	case n.digestOnly:
		h := fnvByte(fnvOffset, 'd')
		s.add(fnvString(h, string(n.bodyDigest[:])))
	case n.body == bodyIsForm:
		pairs('f', n.form)
	case n.body == bodyIsRaw:
		h := fnvByte(fnvOffset, 'r')
		s.add(fnvString(h, string(n.bodyDigest[:])))
	case n.body == bodyIsJSON:
		jsonFeatures(&n.json, fnvByte(fnvOffset, 'j'), &s)
	}
	return s
}

// jsonFeatures adds one feature per leaf: its path and value.
func jsonFeatures(v *jnode, h uint64, s *sketch) {
	switch v.kind {
	case jObject:
		if len(v.mem) == 0 {
			s.add(fnvByte(h, '{'))
		}
		for i := range v.mem {
			jsonFeatures(&v.mem[i].val, fnvString(fnvByte(h, '.'), v.mem[i].key), s)
		}
	case jArray:
		if len(v.arr) == 0 {
			s.add(fnvByte(h, '['))
		}
		for i := range v.arr {
			jsonFeatures(&v.arr[i], fnvString(fnvByte(h, '['), strconv.Itoa(i)), s)
		}
	default:
		h = fnvByte(fnvByte(h, '='), byte(v.kind))
		s.add(fnvString(h, v.s))
	}
}

// packedSketch is a sketch as an Index keeps it for every interaction: the
// high 32 bits of each of the smallest hashes (their order is the same)
// and the count of features. It holds min(total, sketchK) hashes.
type packedSketch struct {
	min   [sketchK]uint32
	total uint32
}

func (s *sketch) packed() packedSketch {
	p := packedSketch{total: s.total}
	for i := range int(s.n) {
		p.min[i] = uint32(s.min[i] >> 32)
	}
	return p
}

func (p *packedSketch) n() int { return int(min(p.total, sketchK)) }

// estPacked estimates how many values differ between the two feature
// sets: half their symmetric difference (a changed value is one feature
// gone and one new), from the Jaccard index estimated on the union's
// bottom k.
func estPacked(a, b *packedSketch) float64 {
	an, bn := a.n(), b.n()
	i, j, taken, both := 0, 0, 0, 0
	for taken < sketchK && (i < an || j < bn) {
		switch {
		case j >= bn || (i < an && a.min[i] < b.min[j]):
			i++
		case i >= an || b.min[j] < a.min[i]:
			j++
		default:
			both++
			i++
			j++
		}
		taken++
	}
	if taken == 0 {
		return 0
	}
	jac := float64(both) / float64(taken)
	return float64(a.total+b.total) * (1 - jac) / (1 + jac) / 2
}
