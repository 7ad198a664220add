package events

// TypeReconcile is the type of a reconciler decision (imgpipe reconcile):
// rebuild, wait or stopped, with its reason; a rebuild's outcome follows as
// another event of the same type with the run and the version it made.
const TypeReconcile = "dev.imgpipe.reconcile.decision"
