package main

import (
	"os"

	"golang.org/x/sys/unix"
)

// startWriteback asks Linux to start writing n bytes of f from off to its
// device, without waiting for them (sync_file_range, SYNC_FILE_RANGE_WRITE):
// no durability of its own, but the fsync that follows has less to wait
// for. An error only means the fsync does all the work.
func startWriteback(f *os.File, off, n int64) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	// Control holds the file open while the call runs.
	_ = rc.Control(func(fd uintptr) {
		_ = unix.SyncFileRange(int(fd), off, n, unix.SYNC_FILE_RANGE_WRITE)
	})
}
