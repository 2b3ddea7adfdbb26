package lvs

// RealName is a real server of the service as keepalived names it in its log and mails:
// "[192.0.2.11]:tcp:80".
func (s *Service) RealName(d Dest) string { return trio(d, s.Protocol) }

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
