package checksched

import "testing"

func TestWeight(t *testing.T) {
	if got := Weight[int32, int](nil); got != nil {
		t.Errorf("Weight(nil) = %v, want nil: no weight reported", *got)
	}
	for _, w := range []int{-MaxWeight, -1, 0, 7, MaxWeight} {
		src := w
		got := Weight[int32](&src)
		if got == nil || int(*got) != w {
			t.Fatalf("Weight(%d) = %v", w, got)
		}
		back := Weight[int](got)
		if back == nil || *back != w || back == &src {
			t.Fatalf("Weight(Weight(%d)) = %v (%p, source %p)", w, back, back, &src)
		}
		if same := Weight[int](&src); same == &src {
			t.Errorf("Weight(%d) to the same type returns its argument", w)
		}
		src++ // a copy: the next shape's weight does not move with the last one's
		if int(*got) != w || *back != w {
			t.Errorf("Weight(%d) shares the source: %d, %d after it changed", w, *got, *back)
		}
	}
}
