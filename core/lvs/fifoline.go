package lvs

// FIFOLine is keepalived's notify FIFO line for an event of kind on s (of real server d for
// RealUp and RealDown), without the newline; "" for the kinds that have none. Core writes
// it from its own configuration: the check process names only the servers.
func (s *Service) FIFOLine(kind Kind, d Dest) string {
	switch kind {
	case RealUp, RealDown:
		return fifoRS(s, d, kind == RealUp)
	case QuorumUp, QuorumDown:
		return fifoVS(s, kind == QuorumUp)
	}
	return ""
}
