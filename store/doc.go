// Package store owns cassetteproxy's on-disk state: the bbolt schema of the
// store file, the interaction codec (a compact versioned binary encoding,
// compressed with zstd from klauspost/compress), and the single-writer
// group-commit Recorder. Run records, their events and fixture histories live
// in the same file under top-level buckets of their own (runs.go, events.go,
// fixtures.go), behind the Records interface that package store/pgstore also
// implements, for a fleet keeping them in one PostgreSQL.
//
// # Schema
//
// One bbolt file (default ./cassettes.db, mode 0600) holds:
//
//	meta/                         store-wide values
//	    schema        "cassetteproxy/1" (written at creation; a bbolt file
//	                  without it that already has buckets is refused)
//	    secret/<name> random key created by Secret(name, size)
//	cassettes/
//	    <cassette name>/          one sub-bucket per cassette
//	        meta/
//	            created_at    8 bytes, big-endian Unix nanoseconds
//	            updated_at    8 bytes, big-endian Unix nanoseconds (last commit)
//	            count         8 bytes, big-endian number of interactions
//	        interactions/
//	            <seq>         8 bytes big-endian Seq (1-based, recorded order,
//	                          from the bucket's own sequence counter) → value
//	        index/
//	            sha256(Key) ‖ <seq>   32+8 bytes → empty value
//	        bodies/
//	            sha256(body)  32 bytes → a response body of 1 KiB or more,
//	                          packed like a value (version, compression, bytes)
//
// The index is keyed by the SHA-256 of the match key (keys may be far longer
// than bbolt's 32 KiB key limit) followed by the big-endian Seq, so the
// interactions sharing one match key are a contiguous, Seq-ordered range found
// with one cursor Seek; appending costs O(log n) however often a key repeats.
// Readers that use the index compare the decoded Interaction.Key to rule out
// hash collisions.
//
// # Values
//
// An interaction value is
//
//	byte 0   format version (1)
//	byte 1   compression: 0 none, 1 zstd
//	rest     the v1 binary encoding of the Interaction, compressed or not
//
// A response body of 1 KiB or more is not in the value: the value holds its
// SHA-256 (flag bit 5), and the body is in the cassette's bodies bucket,
// stored once however many interactions answered it (a polled tool, a
// tools/list, a load test). A Recorder remembers which bodies it stored so a
// repeated one is hashed but not compressed again; the commit writes any body
// it finds missing, so the memory is only a hint. Readers decode inside their
// transaction and hand every interaction with the same body one shared,
// capacity-capped copy. Values written before this (bodies inline) read as
// they always did. Bodies go with their cassette when it is reset or deleted.
//
// An interaction recorded under a store policy (rules file store: hash or
// fields) has markers where its bodies were: they follow everything else in
// the encoding, after a tag byte (extPolicy), so other values are unchanged
// and a reader that does not know the tag refuses the value as trailing
// bytes instead of misreading it.
//
// The binary encoding keeps nil and empty apart for headers, header value
// lists, bodies, events and event data, so values round-trip exactly. Seq is
// not part of the value: it is the key. Values are stored uncompressed only
// when zstd would not make them smaller. One zstd.Encoder and one
// zstd.Decoder (bounded by WithDecoderMaxMemory) are shared by the process.
//
// # Concurrency and lifetime
//
// Open takes bbolt's file lock (exclusive for read-write, shared for
// ReadOnly) and, on Linux, an open-file-description lock of the same kind
// that the store holds until Close; a store held by another process yields
// an error naming the file and, when /proc/locks tells, the holder's pid. All writes of interactions
// go through a Recorder: one goroutine that commits up to MaxBatch records or
// MaxDelay worth of them in one transaction. A record is durable once a Flush
// (or Close) issued after it has returned; until then it may sit in the queue
// for up to MaxDelay plus one commit, and is lost if the process is killed.
// Commit errors surface through Flush, Close and RecorderOptions.OnError,
// never through Record. Store.Close closes every Recorder still open on the
// store (flushing it) before closing the file, so closing Recorders first is
// optional. Values handed out by the store never alias bbolt's memory map.
//
// bbolt keeps two things for an open file that grow for as long as it is
// open: its freelist's record of which transaction took each reused page,
// and the pages read through its memory map, resident in the process. On
// Linux the store bounds both by closing and reopening bbolt's handle (every
// 100 ms while a Recorder commits, and after a cassette load), keeping other
// processes out meanwhile with its own lock (Store.reopen, holdFile).
package store
