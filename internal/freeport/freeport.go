// Package freeport finds free TCP ports on the loopback interface.
package freeport

import (
	"fmt"
	"net"
)

// GetN returns n distinct TCP ports on 127.0.0.1 that were free when asked
// for, holding them all open while choosing so that no two are the same.
// Another process may still take one before the caller binds it.
func GetN(n int) ([]int, error) {
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find %d free ports on 127.0.0.1: %w", n, err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
