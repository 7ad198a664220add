package transfer

import "sort"

// span is a half-open byte range [Start, End) of the virtual fixed VHD.
type span struct{ Start, End int64 }

func (s span) len() int64 { return s.End - s.Start }

// spanSet is a sorted list of disjoint, non-adjacent spans. The zero value is
// empty and ready to use.
type spanSet struct{ s []span }

// add inserts r, merging it with any span it overlaps or touches.
func (ss *spanSet) add(r span) {
	if r.End <= r.Start {
		return
	}
	// first span whose End >= r.Start (may merge with r)
	i := sort.Search(len(ss.s), func(i int) bool { return ss.s[i].End >= r.Start })
	j := i
	for j < len(ss.s) && ss.s[j].Start <= r.End {
		if ss.s[j].Start < r.Start {
			r.Start = ss.s[j].Start
		}
		if ss.s[j].End > r.End {
			r.End = ss.s[j].End
		}
		j++
	}
	if i == j {
		ss.s = append(ss.s, span{})
		copy(ss.s[i+1:], ss.s[i:])
		ss.s[i] = r
		return
	}
	ss.s[i] = r
	ss.s = append(ss.s[:i+1], ss.s[j:]...)
}

// contains reports whether r lies entirely inside one span of the set.
func (ss *spanSet) contains(r span) bool {
	if r.End <= r.Start {
		return true
	}
	i := sort.Search(len(ss.s), func(i int) bool { return ss.s[i].End > r.Start })
	return i < len(ss.s) && ss.s[i].Start <= r.Start && ss.s[i].End >= r.End
}

// total is the number of bytes covered.
func (ss *spanSet) total() int64 {
	var n int64
	for _, s := range ss.s {
		n += s.len()
	}
	return n
}

func (ss *spanSet) clone() []span { return append([]span(nil), ss.s...) }

// equal reports whether two sets cover exactly the same bytes.
func (ss *spanSet) equal(o *spanSet) bool {
	if len(ss.s) != len(o.s) {
		return false
	}
	for i := range ss.s {
		if ss.s[i] != o.s[i] {
			return false
		}
	}
	return true
}
