package ipvs

import "fmt"

// OpKind is what an Op does.
type OpKind uint8

// The operations, each one netlink command.
const (
	AddService    OpKind = iota + 1 // IPVS_CMD_NEW_SERVICE
	UpdateService                   // IPVS_CMD_SET_SERVICE
	DelService                      // IPVS_CMD_DEL_SERVICE; the kernel drops its destinations with it
	AddDest                         // IPVS_CMD_NEW_DEST
	UpdateDest                      // IPVS_CMD_SET_DEST
	DelDest                         // IPVS_CMD_DEL_DEST
)

func (k OpKind) String() string {
	switch k {
	case AddService:
		return "add service"
	case UpdateService:
		return "update service"
	case DelService:
		return "delete service"
	case AddDest:
		return "add destination"
	case UpdateDest:
		return "update destination"
	case DelDest:
		return "delete destination"
	}
	return fmt.Sprintf("op(%d)", uint8(k))
}

// Op is one change to the kernel's table.
type Op struct {
	Kind OpKind
	// Service is the service changed or the one whose destination changes:
	// the wanted service for adds and updates, the one in the kernel for
	// DelService.
	Service Service
	// Dest is the destination for AddDest, UpdateDest and DelDest: the wanted
	// one, or the one in the kernel for DelDest.
	Dest Destination
}

// IsDest says whether the op changes a destination rather than a service.
func (o Op) IsDest() bool { return o.Kind == AddDest || o.Kind == UpdateDest || o.Kind == DelDest }

// String is the op in ipvsadm's words: "add service TCP  192.0.2.1:80 wrr",
// "update destination TCP  192.0.2.1:80 -> 198.51.100.2:80 DR weight 3".
func (o Op) String() string {
	s := o.Service
	switch o.Kind {
	case AddService, UpdateService:
		out := fmt.Sprintf("%v %v %s", o.Kind, s.Key, s.Scheduler)
		if s.Flags != 0 {
			out += " flags " + s.Flags.String()
		}
		if s.Flags&FlagPersistent != 0 || s.Timeout != 0 {
			out += fmt.Sprintf(" persistent %d", s.Timeout)
		}
		if s.Netmask != 0 {
			out += fmt.Sprintf(" mask /%d", s.Netmask)
		}
		if s.PE != "" {
			out += " pe " + s.PE
		}
		return out
	case DelService:
		return fmt.Sprintf("%v %v", o.Kind, s.Key)
	case AddDest, UpdateDest:
		d := o.Dest
		out := fmt.Sprintf("%v %v -> %v %v weight %d", o.Kind, s.Key, d.Key, d.Method, d.Weight)
		if d.UpperThreshold != 0 || d.LowerThreshold != 0 {
			out += fmt.Sprintf(" thresholds %d-%d", d.LowerThreshold, d.UpperThreshold)
		}
		if d.Method == TUN {
			out += " tunnel " + d.TunnelType.String()
			if d.TunnelPort != 0 {
				out += fmt.Sprintf(" port %d", d.TunnelPort)
			}
			if d.TunnelFlags != 0 {
				out += fmt.Sprintf(" flags %#x", uint16(d.TunnelFlags))
			}
		}
		return out
	case DelDest:
		return fmt.Sprintf("%v %v -> %v", o.Kind, s.Key, o.Dest.Key)
	}
	return fmt.Sprintf("%v %v", o.Kind, s.Key)
}

// Diff is the fewest operations that take the kernel's table have to want:
// a service or destination whose settings differ is updated in place (the
// kernel can change every setting that is not part of the key, and does so
// without dropping established connections); a service in have only is
// deleted, which deletes its destinations with it.
//
// The order is deterministic: services in ServiceKey order, and within a
// service: its addition before its destinations, then deletions of
// destinations, the service's update, updates of destinations and additions,
// each in DestKey order.
//
// Diff deletes every service of have that want lacks: a caller that manages
// only some of the kernel's services passes have.Only(theirs).
func Diff(have, want Table) []Op {
	keys := make(Table, len(have)+len(want))
	for k, v := range have {
		keys[k] = v
	}
	for k, v := range want {
		keys[k] = v
	}
	var ops []Op
	for _, k := range keys.Keys() {
		h, inHave := have[k]
		w, inWant := want[k]
		switch {
		case !inWant:
			ops = append(ops, Op{Kind: DelService, Service: h.Service.normal()})
		case !inHave:
			ws := w.Service.normal()
			ops = append(ops, Op{Kind: AddService, Service: ws})
			for _, dk := range w.DestKeys() {
				ops = append(ops, Op{Kind: AddDest, Service: ws, Dest: w.Dests[dk]})
			}
		default:
			ops = diffVirtual(ops, h, w)
		}
	}
	return ops
}

func diffVirtual(ops []Op, h, w Virtual) []Op {
	ws := w.Service.normal()
	for _, dk := range h.DestKeys() {
		if _, ok := w.Dests[dk]; !ok {
			ops = append(ops, Op{Kind: DelDest, Service: ws, Dest: h.Dests[dk]})
		}
	}
	if h.Service.normal() != ws {
		ops = append(ops, Op{Kind: UpdateService, Service: ws})
	}
	for _, dk := range w.DestKeys() {
		if hd, ok := h.Dests[dk]; ok && hd != w.Dests[dk] {
			ops = append(ops, Op{Kind: UpdateDest, Service: ws, Dest: w.Dests[dk]})
		}
	}
	for _, dk := range w.DestKeys() {
		if _, ok := h.Dests[dk]; !ok {
			ops = append(ops, Op{Kind: AddDest, Service: ws, Dest: w.Dests[dk]})
		}
	}
	return ops
}

// normal is the service as the kernel reports it back, so that what was asked
// and what was read compare equal: without the hashed flag (the kernel's own)
// and with a whole-address netmask written as 0.
func (s Service) normal() Service {
	s.Flags &^= FlagHashed
	if int(s.Netmask) == s.Key.maxBits() {
		s.Netmask = 0
	}
	return s
}
