package store

import (
	"reflect"
	"unsafe"

	bolt "go.etcd.io/bbolt"
)

// bbolt's freelist remembers, for every page it hands out again from the
// free list, which transaction took it (freelist.allocs, a map in memory
// only), and forgets the entry only when that page is freed again. A
// recording appends: its filled pages are never written again, so their
// entries stay for as long as the store is open, ~25 bytes each. A proxy
// recording a million interactions grew its heap by ~2.5 MiB for them, and
// ~6 MiB at 2.5 million (bbolt v1.5.0; nothing in its API clears them, and
// reopening the file would let another process take the lock meanwhile).
//
// What the entries are for: when a page is freed, its allocating
// transaction lets bbolt reuse it early if no read transaction open at the
// time could have seen it. A page without an entry (every page allocated
// before the file was opened has none) is reused once every older read
// transaction has ended: later, never wrongly. So forgetting them is safe,
// and trimAllocs does, from inside a write transaction, before the
// transaction allocates anything: only the writer touches the map.

// maxAllocs is how many entries the map may hold before trimAllocs starts
// it afresh (a few hundred KiB). A variable for the test.
var maxAllocs = 8192

// freelistAllocs finds bbolt's freelist.allocs map in db, reflect's way
// (the field is unexported and inside an internal package). ok is false if
// bbolt's layout is not the one this was written for: then nothing is
// trimmed, and TestFreelistAllocsStayBounded fails.
func freelistAllocs(db *bolt.DB) (allocs reflect.Value, ok bool) {
	fl := reflect.ValueOf(db).Elem().FieldByName("freelist")
	if fl.Kind() != reflect.Interface || fl.IsNil() {
		return reflect.Value{}, false
	}
	impl := fl.Elem() // *freelist.array or *freelist.hashMap
	if impl.Kind() != reflect.Pointer || impl.IsNil() || impl.Elem().Kind() != reflect.Struct {
		return reflect.Value{}, false
	}
	shared := impl.Elem().FieldByName("shared")
	if shared.Kind() != reflect.Pointer || shared.IsNil() || shared.Elem().Kind() != reflect.Struct {
		return reflect.Value{}, false
	}
	allocs = shared.Elem().FieldByName("allocs")
	if allocs.Kind() != reflect.Map || !allocs.CanAddr() {
		return reflect.Value{}, false
	}
	return allocs, true
}

// trimAllocs replaces bbolt's freelist.allocs map with an empty one once it
// holds maxAllocs entries (see above). Call it only inside a write
// transaction, before anything is put.
func trimAllocs(db *bolt.DB) {
	allocs, ok := freelistAllocs(db)
	if !ok || allocs.Len() < maxAllocs {
		return
	}
	// A new map, not clear(): a cleared map keeps its table's size.
	writable := reflect.NewAt(allocs.Type(), unsafe.Pointer(allocs.UnsafeAddr())).Elem()
	writable.Set(reflect.MakeMap(allocs.Type()))
}
