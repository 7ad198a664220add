package view

import (
	"fmt"
	"io"
	"time"

	"imgpipe/internal/catalog"
)

// LockNotices are image-lock options (give up after timeout, 0: never)
// that tell w whom a run waits for, and when it takes over the lock of a
// run that is gone.
func LockNotices(w io.Writer, timeout time.Duration) catalog.LockOptions {
	return catalog.LockOptions{Timeout: timeout,
		Waiting: func(h catalog.Holder) {
			fmt.Fprintf(w, "imgpipe: waiting for lock held by %s (image %s)\n", h, h.Image)
		},
		TookOver: func(h catalog.Holder) {
			fmt.Fprintf(w, "imgpipe: took over the lock of %s from %s, which is gone; that run is marked abandoned\n", h.Image, h)
		}}
}
