package store

import bolt "go.etcd.io/bbolt"

// Lookups by match key that only the tests make: the proxy's lookups go
// through its own index.

// Seqs returns, in recorded order, the Seqs of the cassette's interactions
// whose match key hashes like key (use InteractionsByKey for a verified list).
func (s *Store) Seqs(cassette, key string) ([]uint64, error) {
	var seqs []uint64
	err := s.view(func(tx *bolt.Tx) error {
		c := cassetteBucket(tx, cassette)
		if c == nil {
			return &notFoundError{cassette}
		}
		seqs = seqsTx(c, key)
		return nil
	})
	return seqs, s.wrap(err)
}

// InteractionsByKey returns, in recorded order, the cassette's interactions
// whose Key equals key, found through the index.
func (s *Store) InteractionsByKey(cassette, key string) ([]Interaction, error) {
	var all []Interaction
	err := s.view(func(tx *bolt.Tx) error {
		c := cassetteBucket(tx, cassette)
		if c == nil {
			return &notFoundError{cassette}
		}
		var raws []rawValue
		items := c.Bucket(subInteractions)
		for _, seq := range seqsTx(c, key) {
			if v := items.Get(be64(seq)); v != nil {
				raws = append(raws, rawValue{seq, v})
			}
		}
		var err error
		all, err = decodeRaw(cassette, raws, newBodyCache(c))
		return err
	})
	if err != nil {
		return nil, s.wrap(err)
	}
	out := all[:0]
	for _, in := range all {
		if in.Key == key {
			out = append(out, in)
		}
	}
	return out, nil
}
