package main

import "net"

func nilListener() net.Listener { return nil }

func addrOf(l net.Listener) string {
	if l == nil {
		return "off"
	}
	return l.Addr().String()
}
