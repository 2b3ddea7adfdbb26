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
type Tracker struct {
	Kind    TrackerKind
	Up      bool // TrackUpDown: the object is up (script succeeds, link up ...)
	Value   int  // TrackFile: the number in the file
	Weight  int  // -253..253 (the config layer checks the range)
	Reverse bool
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
//   - the address owner (255) keeps 255 whatever the weights, but a failing
//     weight-0 tracker (or a file at -254) still puts it in FAULT.
func Effective(base int, trackers []Tracker) (priority int, fault bool) {
	total := base
	for _, t := range trackers {
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
