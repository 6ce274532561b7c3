//go:build unix

package scratch

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

var errLocked = errors.New("held by a live process")

// lockDir opens dir and takes an exclusive lock on it without waiting.
// wait=true is for a directory this process just made, which no one else can
// hold yet.
func lockDir(dir string, wait bool) (*os.File, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	how := syscall.LOCK_EX
	if !wait {
		how |= syscall.LOCK_NB
	}
	if err := syscall.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, errLocked
		}
		return nil, fmt.Errorf("flock: %w", err)
	}
	return f, nil
}
