package main

import (
	"math"
	"sort"
)

// sample is one metric's values for one implementation.
type sample struct {
	vals []float64
}

func (s *sample) add(v float64) { s.vals = append(s.vals, v) }
func (s *sample) n() int        { return len(s.vals) }

func (s *sample) sorted() []float64 {
	v := append([]float64(nil), s.vals...)
	sort.Float64s(v)
	return v
}

// quantile is the linearly interpolated q-quantile (q in [0,1]); NaN when empty.
func (s *sample) quantile(q float64) float64 {
	v := s.sorted()
	if len(v) == 0 {
		return math.NaN()
	}
	pos := q * float64(len(v)-1)
	lo := int(math.Floor(pos))
	hi := int(math.Ceil(pos))
	return v[lo] + (v[hi]-v[lo])*(pos-float64(lo))
}

func (s *sample) median() float64 { return s.quantile(0.5) }
func (s *sample) min() float64    { return s.quantile(0) }
func (s *sample) max() float64    { return s.quantile(1) }
