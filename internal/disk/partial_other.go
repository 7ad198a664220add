//go:build !unix

package disk

import "os"

// Where there is no flock (Windows), an open file cannot be removed: the
// removal itself tells a live writer from a dead one.
func lockPartial(*os.File) error { return nil }

func removeIfStale(name string) (bool, error) {
	if err := os.Remove(name); err != nil {
		return false, err
	}
	return true, nil
}
