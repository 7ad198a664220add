//go:build !linux

package onprem

import (
	"errors"
	"os"
)

func seekData(f *os.File, off, size int64) (span, bool, error) {
	return span{}, false, errors.New("hole detection not supported here")
}
