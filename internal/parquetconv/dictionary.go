package parquetconv

import (
	"bytes"
	"encoding/binary"
	"hash/maphash"
	"math/bits"
)

// dictionary holds a chunk's distinct byte-array values in the order first
// seen, and finds a value's index with an open-addressing hash table: the
// work parquet-go's dictionary does with a Go map, which took 8–13 % of a
// conversion's CPU.
type dictionary struct {
	data   []byte   // the values, back to back
	offs   []uint32 // value i is data[offs[i]:offs[i+1]]
	hashes []uint64 // of each value
	table  []uint32 // index+1 of the value in each slot, 0 when empty
	seed   maphash.Seed
	key    uint64 // mixed into short values' hashes, so that no feed can choose their collisions
}

func newDictionary() *dictionary {
	seed := maphash.MakeSeed()
	return &dictionary{offs: []uint32{0}, table: make([]uint32, 64), seed: seed, key: maphash.Bytes(seed, []byte("key"))}
}

func (d *dictionary) len() int { return len(d.offs) - 1 }

// size is the dictionary's size as a PLAIN dictionary page.
func (d *dictionary) size() int64 { return int64(len(d.data) + 4*d.len()) }

func (d *dictionary) value(i int32) []byte { return d.data[d.offs[i]:d.offs[i+1]] }

func (d *dictionary) reset() {
	d.data, d.offs, d.hashes = d.data[:0], d.offs[:1], d.hashes[:0]
	clear(d.table)
}

// index returns v's index, adding v if it is new.
func (d *dictionary) index(v []byte) int32 {
	h := d.hash(v)
	mask := uint64(len(d.table) - 1)
	for s := h & mask; ; s = (s + 1) & mask {
		e := d.table[s]
		if e == 0 {
			i := int32(d.len())
			d.data = append(d.data, v...)
			d.offs = append(d.offs, uint32(len(d.data)))
			d.hashes = append(d.hashes, h)
			d.table[s] = uint32(i) + 1
			if d.len()*4 >= len(d.table)*3 {
				d.grow()
			}
			return i
		}
		if d.hashes[e-1] == h && bytes.Equal(d.value(int32(e-1)), v) {
			return int32(e - 1)
		}
	}
}

// grow doubles the table.
func (d *dictionary) grow() {
	d.table = make([]uint32, 2*len(d.table))
	mask := uint64(len(d.table) - 1)
	for i, h := range d.hashes {
		s := h & mask
		for d.table[s] != 0 {
			s = (s + 1) & mask
		}
		d.table[s] = uint32(i) + 1
	}
}

// hash hashes v: values of up to 16 bytes (most of a repetitive column's)
// by two multiplications of their bytes, longer ones with maphash.
func (d *dictionary) hash(v []byte) uint64 {
	const m1, m2 = 0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F
	n := len(v)
	var a, b uint64
	switch {
	case n > 16:
		return maphash.Bytes(d.seed, v)
	case n >= 8:
		a, b = binary.LittleEndian.Uint64(v), binary.LittleEndian.Uint64(v[n-8:])
	case n >= 4:
		a, b = uint64(binary.LittleEndian.Uint32(v)), uint64(binary.LittleEndian.Uint32(v[n-4:]))
	case n > 0:
		a = uint64(v[0])<<16 | uint64(v[n/2])<<8 | uint64(v[n-1])
	}
	hi, lo := bits.Mul64(a^m1^d.key, b^m2^uint64(n))
	return hi ^ lo
}
