package onprem

// The library as imgpipe onprem's verbs name it: by --library (or
// $IMGPIPE_LIBRARY), channels by the list --channel gives.

import (
	"errors"
	"fmt"
	"strings"
)

// LibraryEnv names the library when --library is not given.
const LibraryEnv = "IMGPIPE_LIBRARY"

// OpenLibrary opens the library at path, the verbs' --library.
func OpenLibrary(path string) (*Library, error) {
	if path == "" {
		return nil, errors.New("no library given: pass --library DIR or set " + LibraryEnv)
	}
	return Open(path)
}

// SetChannels points each of channels at image's version, in order; on a
// failure the error names the channels already moved.
func (l *Library) SetChannels(image, version string, channels []string) error {
	if len(channels) == 0 {
		return errors.New("give the channel to point at the version: --channel prod")
	}
	for i, ch := range channels {
		if err := l.SetChannel(image, version, ch); err != nil {
			if i > 0 {
				return fmt.Errorf("%w (%s already point at %s)", err, strings.Join(channels[:i], ", "), version)
			}
			return err
		}
	}
	return nil
}
