package view

// An answer already drawn: the root sets the exit status and prints
// nothing more.

import "errors"

// ShownError is an outcome already drawn in full (its result on stdout):
// the root sets the exit status from it and prints nothing more.
type ShownError struct{ Err error }

func (e *ShownError) Error() string { return e.Err.Error() }
func (e *ShownError) Unwrap() error { return e.Err }

// Shown marks err as already drawn (nil stays nil).
func Shown(err error) error {
	if err == nil {
		return nil
	}
	return &ShownError{err}
}

// IsShown reports whether err was already drawn.
func IsShown(err error) bool {
	var se *ShownError
	return errors.As(err, &se)
}
