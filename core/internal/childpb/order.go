package childpb

// Order is where a CheckState stands among the states of its check: (Epoch, Seq), compared
// in that order. No clock is involved, so a clock that steps back cannot make a new state
// look old (see CheckState in child.proto).
type Order struct{ Epoch, Seq uint64 }

// Order returns the state's place among the states of its check.
func (x *CheckState) Order() Order { return Order{Epoch: x.GetEpoch(), Seq: x.GetSeq()} }

// Before reports whether o comes strictly before p: a state ordered before the last one taken
// is stale, and one equal to it is the same state sent again.
func (o Order) Before(p Order) bool {
	if o.Epoch != p.Epoch {
		return o.Epoch < p.Epoch
	}
	return o.Seq < p.Seq
}
