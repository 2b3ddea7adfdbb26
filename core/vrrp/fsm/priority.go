package fsm

// TrackerKind says how a tracker's state turns into priority.
type TrackerKind int

const (
	// TrackUpDown is a tracked interface, script, check, BFD session or
	// process: up or down.
	TrackUpDown TrackerKind = iota
	// TrackFile is a track_file: its Value is the number read from the file.
	TrackFile
)

// Tracker is the state of one tracked object as one instance sees it, with the
// weight and reverse flag that instance configured for it.
//
// Up and Value are the object's own state, never turned around: a script that exits 0 is
// Up whether it is tracked with reverse or not, and its rise and fall counted those raw
// results. Reverse is applied in one place only, Effective below; see there why.
type Tracker struct {
	Kind    TrackerKind
	Up      bool // TrackUpDown: the object is up (script succeeds, link up ...)
	Value   int  // TrackFile: the number in the file
	Weight  int  // -253..253 (the config layer checks the range)
	Reverse bool // the weight's direction is turned around: see Effective
	// Dynamic is a weight a check plugin reported (vigil only; keepalived has none). While
	// the object is up, and the tracker is not reverse, it takes the place of Weight's
	// effect; while the object is down Weight applies as usual, so that a plugin can never
	// soften what its failure does.
	Dynamic *int
}

// Effective computes an instance's effective priority from its configured
// priority and its trackers, with keepalived's rules (vrrp_track.c,
// track_file.c):
//
//   - weight 0: the instance is in FAULT while the object is down (with
//     reverse: while it is up). For a file, a non-zero value is "down".
//   - weight > 0: +weight while up (reverse: -weight while up).
//   - weight < 0: -|weight| while down (reverse: +|weight| while down).
//   - file with weight w: value*w (reverse: -value*w), capped at +253; at
//     -254 or below the instance is in FAULT.
//   - vigil's dynamic weight, while the object is up and not reverse: +dynamic
//     (capped to ±253) in place of all of the above.
//   - the sum is clamped to 1..254.
//   - the address owner (255) keeps 255: as keepalived 2.2.7 does when it completes
//     the instance (vrrp.c, "ignoring ... due to address_owner"), it ignores every
//     tracker with a non-zero weight, and takes a track_file's weight 1 (the default)
//     for weight 0; its weight-0 trackers still put it in FAULT as above.
//
// This is the one place that decides what reverse does, for every kind of tracker (script,
// vrrp_check, interface, file) and for dynamic weights. keepalived 2.2.7 keeps it in one
// place as well: its scripts report their raw exit status, rise and fall count raw
// results, and only the VRRP side multiplies the weight by -1 (the tracking object's
// weight_multiplier in vrrp_track.c and track_file.c). vigil once turned a check's result
// around in the check process too (the plugin Prober), and with the flip here the two
// cancelled: `weight 20 reverse` on a succeeding script left the priority at 100 where
// keepalived advertises 80, and `weight 0 reverse` put the instance in FAULT on the wrong
// side. So the check process, the track_file watcher and the link watch report what they
// see, and reverse means something here only (TestPriorityDifferential in core/vrrp
// compares the result with keepalived's on the wire).
//
// A reversed tracker ignores a dynamic weight: a plugin reports how far its own service
// has degraded, and turned around that would raise the priority of a node as its service
// recovers, a reading no configuration asked for. keepalived has no dynamic weights for
// VRRP to compare with; its nearest relative, a track_file's value times weight, is
// reversed whole, and so it is here.
func Effective(base int, trackers []Tracker) (priority int, fault bool) {
	total := base
	for _, t := range trackers {
		if base == PriorityOwner {
			if t.Kind == TrackFile && t.Weight == 1 {
				t.Weight = 0 // a file at its default weight: FAULT while non-zero
			} else if t.Weight != 0 {
				continue // nothing moves the owner's priority, nor faults it by a weight
			}
		}
		mult := 1
		if t.Reverse {
			mult = -1
		}
		switch t.Kind {
		case TrackFile:
			var status int
			if t.Weight == 0 {
				if (t.Value != 0) != t.Reverse {
					fault = true
				}
				continue
			}
			status = clampInt(t.Value*t.Weight*mult, -254, 253)
			if status <= -254 {
				fault = true
				continue
			}
			total += status
		default:
			switch {
			case t.Dynamic != nil && t.Up && !t.Reverse:
				total += clampInt(*t.Dynamic, -253, 253)
			case t.Weight == 0:
				if t.Up == t.Reverse {
					fault = true
				}
			case t.Weight > 0 && t.Up:
				total += t.Weight * mult
			case t.Weight < 0 && !t.Up:
				total += t.Weight * mult
			}
		}
	}
	if base == PriorityOwner {
		return PriorityOwner, fault
	}
	return clampPriority(total), fault
}

// clampPriority limits a non-owner's priority to 1..254 (keepalived never
// lets weights make a router the owner, nor give it priority 0).
func clampPriority(p int) int { return clampInt(p, 1, PriorityOwner-1) }

func clampInt(v, lo, hi int) int {
	return min(max(v, lo), hi)
}
