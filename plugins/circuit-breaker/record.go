package main

import (
	"encoding/binary"
	"errors"
)

// A record travels through shared data on every request, so it is small:
// a version byte, then unsigned varints in a fixed order (state, epoch,
// consecutive, trips, openUntil, probes, okProbes, probeAt, inFlight, head,
// then calls and fails of each bucket). An idle closed breaker takes about
// 30 bytes; a busy one with a rate window under 100.

const recordVersion = 1

// maxRecordBytes bounds an encoded record: 1 + 10 varints of at most 10
// bytes + 20 varints of at most 5.
const maxRecordBytes = 1 + 10*binary.MaxVarintLen64 + 2*buckets*binary.MaxVarintLen32

var errBadRecord = errors.New("unreadable shared-data record")

// appendRecord appends r's encoding to dst.
func appendRecord(dst []byte, r *record) []byte {
	dst = append(dst, recordVersion)
	for _, v := range [...]uint64{uint64(r.state), uint64(r.epoch), uint64(r.consecutive), uint64(r.trips),
		uint64(r.openUntil), uint64(r.probes), uint64(r.okProbes), uint64(r.probeAt), uint64(r.inFlight), uint64(r.head)} {
		dst = binary.AppendUvarint(dst, v)
	}
	for i := range buckets {
		dst = binary.AppendUvarint(dst, uint64(r.calls[i]))
		dst = binary.AppendUvarint(dst, uint64(r.fails[i]))
	}
	return dst
}

// decodeRecord reads a record written by appendRecord. Anything else is an
// error; the caller then starts from a closed breaker.
func decodeRecord(b []byte, r *record) error {
	if len(b) == 0 || b[0] != recordVersion {
		return errBadRecord
	}
	b = b[1:]
	next := func() uint64 {
		if b == nil {
			return 0
		}
		v, n := binary.Uvarint(b)
		if n <= 0 {
			b = nil
			return 0
		}
		b = b[n:]
		return v
	}
	var head [10]uint64
	for i := range head {
		head[i] = next()
	}
	*r = record{
		state: state(head[0]), epoch: uint32(head[1]), consecutive: uint32(head[2]), trips: uint32(head[3]),
		openUntil: int64(head[4]), probes: uint32(head[5]), okProbes: uint32(head[6]), probeAt: int64(head[7]),
		inFlight: uint32(head[8]), head: int64(head[9]),
	}
	for i := range buckets {
		r.calls[i] = uint32(next())
		r.fails[i] = uint32(next())
	}
	if b == nil || len(b) != 0 || r.state > halfOpen || r.head < 0 || head[1] > 1<<32-1 {
		*r = record{}
		return errBadRecord
	}
	return nil
}
