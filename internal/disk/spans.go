package disk

import (
	"context"
	"fmt"
	"slices"
)

// A span is a byte range of an image file owned by one structure (a header,
// a table, a data block). Parsers collect the spans a file's tables describe
// and refuse files where two of them overlap: overlapping blocks let a small
// file describe an unbounded amount of data (the same bytes read again and
// again), and a block laid over a table turns the table into data. Once no
// two spans overlap and each lies inside the file, the data a file describes
// is at most its own size, so the work of reading it is bounded by the file.
type span struct {
	start, end int64
	kind       spanKind
	index      int64 // block number, for the error message
}

type spanKind uint8

const (
	spanHeader spanKind = iota
	spanFooter
	spanTable
	spanLog
	spanMetadata
	spanBlock
	spanBitmapBlock
)

func (s span) String() string {
	switch s.kind {
	case spanHeader:
		return "the header section"
	case spanFooter:
		return "the footer"
	case spanTable:
		return "the block allocation table"
	case spanLog:
		return "the log"
	case spanMetadata:
		return "the metadata region"
	case spanBlock:
		return fmt.Sprintf("block %d", s.index)
	default:
		return fmt.Sprintf("sector bitmap block %d", s.index)
	}
}

// checkSpans refuses overlapping spans. It sorts spans in place.
func checkSpans(ctx context.Context, format string, spans []span) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	slices.SortFunc(spans, func(a, b span) int {
		switch {
		case a.start < b.start:
			return -1
		case a.start > b.start:
			return 1
		}
		return 0
	})
	for i := 1; i < len(spans); i++ {
		if i%(1<<16) == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if prev := spans[i-1]; spans[i].start < prev.end {
			return corruptf("%s: %s (bytes %d-%d of the file) overlaps %s (bytes %d-%d): the file's tables are inconsistent (damaged or crafted); re-create it from its source", format,
				spans[i], spans[i].start, spans[i].end, prev, prev.start, prev.end)
		}
	}
	return nil
}

// ctxEvery is how many table entries a parser handles between two looks at
// its context.
const ctxEvery = 1 << 16
