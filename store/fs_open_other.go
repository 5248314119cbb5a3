//go:build !unix

package store

import "os"

// openRead opens p for reading (see the unix version; other systems have no FIFOs in the file
// system).
func openRead(p string) (*os.File, error) { return os.Open(p) }

func setBlocking(*os.File) error { return nil }
