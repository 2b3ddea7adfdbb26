package config

import (
	"net/netip"
	"time"
)

// Config is the typed model of one configuration: everything vigil runs, with keepalived's
// defaults filled in. Lists keep the order of the file.
type Config struct {
	// Files are the files read, the main file first, then includes in reading order.
	Files []string
	// Includes are the patterns of the include lines (absolute, braces expanded), matched or
	// not: a file that appears later under one of them changes the configuration.
	Includes []string
	Global   Global

	Scripts     []*VRRPScript
	TrackFiles  []*TrackFile
	Checks      []*PluginCheck
	Notifiers   []*NotifyPlugin
	Instances   []*VRRPInstance
	SyncGroups  []*SyncGroup
	StaticAddrs []*Address
	StaticRts   []*Route

	VirtualServerGroups []*VirtualServerGroup
	VirtualServers      []*VirtualServer

	// Tree is the statement tree after includes, conditionals and parameters were resolved;
	// vigil -d prints it.
	Tree []*Node `json:"-"`
}

// Global holds global_defs.
type Global struct {
	RouterID              string
	NotificationEmail     []string
	NotificationEmailFrom string
	SMTPServer            string // host or address
	SMTPPort              int    // default 25
	SMTPHeloName          string
	SMTPConnectTimeout    time.Duration // default 30s
	// SMTPAlert, SMTPAlertVRRP and SMTPAlertChecker are nil when not set, so instances can
	// tell "off" from "unset".
	SMTPAlert        *bool
	SMTPAlertVRRP    *bool
	SMTPAlertChecker *bool
	NoEmailFaults    bool

	ScriptUser           string
	ScriptGroup          string
	EnableScriptSecurity bool

	VRRPVersion     int // 2 (default) or 3
	VRRPMcastGroup4 netip.Addr
	VRRPMcastGroup6 netip.Addr
	VRRPStrict      bool
	// VRRPStartupDelay holds VRRP back after start, for slow interfaces.
	VRRPStartupDelay         time.Duration
	VRRPSkipCheckAdvAddr     bool
	VRRPCheckUnicastSrc      bool
	VRRPLowerPrioNoAdvert    bool
	VRRPHigherPrioSendAdvert bool
	V3ChecksumAsV2           bool
	DefaultInterface         string
	Garp                     Garp

	NotifyFIFO     *FIFO
	VRRPNotifyFIFO *FIFO
	// LVSNotifyFIFO gets keepalived's lines for virtual and real server transitions.
	LVSNotifyFIFO *FIFO

	// LVSSyncDaemon is lvs_sync_daemon (or the deprecated lvs_sync_daemon_interface of a
	// vrrp_instance); nil when not set.
	LVSSyncDaemon *SyncDaemon
	// LVSFlush empties the whole IPVS table at start (lvs_flush), before vigil adds its
	// services. Without it, a service that exists already is taken over as it is.
	LVSFlush bool
	// LVSFlushOnStop is lvs_flush_on_stop: "" (not set: each real server and each virtual
	// server vigil added is removed one by one), "full" (the whole IPVS table is flushed,
	// services vigil did not add included) or "VS" (each virtual server vigil added is
	// removed, and the kernel drops its real servers with it).
	LVSFlushOnStop string
	// LVSTimeouts are the kernel's IPVS connection timeouts (lvs_timeouts); a zero field
	// leaves that timeout as the kernel has it.
	LVSTimeouts LVSTimeouts
	// RSInitNotifies is rs_init_notifies: real servers that start up (at start, or added by
	// a reload) are announced with notify_up and a notify FIFO line, as later changes are.
	RSInitNotifies bool

	// VRRPProcess and CheckerProcess are the scheduling settings of the vrrp and the check
	// process (vrrp_priority ..., checker_priority ...).
	VRRPProcess    Process
	CheckerProcess Process

	// PluginDir is where vigil looks for vigil-check-NAME and vigil-notify-NAME binaries.
	PluginDir string
	// PluginSHA256 pins plugins (plugin_sha256 NAME HEX): the lower-case hex SHA-256 of each
	// pinned executable, keyed by its file name in PluginDir (vigil-check-mysql). vigil
	// refuses to start a pinned plugin whose file has another checksum.
	PluginSHA256 map[string]string
	// MetricsListen is metrics_listen HOST:PORT: where core serves Prometheus metrics and
	// the read-only HTTP status (docs/metrics.md). Empty, the default: off. The
	// --metrics-listen flag overrides it.
	MetricsListen string
	// BGP is the bgp block: nil when absent, and then no BGP speaker runs.
	BGP *BGP
}

// Process is how one of vigil's child processes is scheduled, from keepalived's
// PREFIX_priority, PREFIX_rt_priority, PREFIX_rlimit_rttime and PREFIX_no_swap (PREFIX: vrrp,
// checker). The zero value changes nothing.
type Process struct {
	// Nice is the nice value, -20..19; 0 leaves it as it is. As in keepalived, it is not
	// applied while RTPriority is: a real-time thread does not use it.
	Nice int
	// RTPriority, 1..99, runs every thread with SCHED_RR at this priority; 0: not real-time.
	RTPriority int
	// RLimitRTTime is the CPU time in microseconds that a real-time thread may use without
	// blocking before it is warned (at half of it) with SIGXCPU; only with RTPriority.
	// Default 10000, keepalived's.
	RLimitRTTime int
	// NoSwap locks the process's pages in memory (mlockall) as they are touched.
	NoSwap bool
	// Places are where each keyword was written, for the warnings that name it when the
	// kernel refuses a setting.
	Places map[string]Pos `json:"-"`
}

// SyncDaemon is the kernel's IPVS connection synchronisation (lvs_sync_daemon INTERFACE
// [VRRP_INSTANCE] [id N] [maxlen N] [port N] [ttl N] [group ADDR]). A zero number or address
// leaves the kernel's default (port 8848, ttl 1, group 224.0.0.81, maxlen from the MTU).
type SyncDaemon struct {
	// Interface is where the sync messages are sent and received (under 16 bytes).
	Interface string
	// Instance is the vrrp_instance whose state drives the daemons: while it is master the
	// kernel runs the master (sending) daemon, otherwise the backup (receiving) one. ""
	// (no instance named): both run all the time, as keepalived's checker does then.
	Instance    string
	InstancePos Pos
	// SyncID tells this cluster's messages from others' on the same group, 0..255; when not
	// given, the instance's virtual_router_id (0 without an instance).
	SyncID    int
	HasSyncID bool
	MaxLen    int        // the sync message's largest payload, 1..65507; 0: the kernel's
	Port      int        // UDP port of the sync messages, 1..65535; 0: the kernel's (8848)
	TTL       int        // multicast TTL, 1..255; 0: the kernel's (1)
	Group     netip.Addr // multicast group; zero: the kernel's (224.0.0.81, or ff02::81)
	Pos       Pos
}

// LVSTimeouts are lvs_timeouts: the IPVS connection timeouts for established TCP, TCP after
// FIN, and UDP, each 0..31 days; 0 leaves the kernel's value.
type LVSTimeouts struct {
	TCP    time.Duration
	TCPFin time.Duration
	UDP    time.Duration
	Pos    Pos
}

// Garp is the gratuitous ARP / unsolicited NA schedule on becoming master.
type Garp struct {
	MasterDelay         time.Duration // default 5s
	MasterRepeat        int           // default 5
	MasterRefresh       time.Duration // 0: no refresh
	MasterRefreshRepeat int           // default 1
	LowerPrioDelay      time.Duration // after a lower priority advert; default: global MasterDelay
	LowerPrioRepeat     int           // after a lower priority advert, 0: none; default: global MasterRepeat
	Interval            time.Duration // between GARPs, 0: back to back
	GNAInterval         time.Duration // between NAs
}

// FIFO is a notify FIFO with an optional script that reads it.
type FIFO struct {
	Path   string
	Script *Script
	Pos    Pos
}

// Script is a command line run by the exec plugin, optionally as another user.
type Script struct {
	// Cmd is the command as written; Argv splits it the way keepalived does.
	Cmd   string
	Argv  []string
	User  string
	Group string
	Pos   Pos
}

// VRRPScript is a vrrp_script block.
type VRRPScript struct {
	Name     string
	Pos      Pos
	Script   *Script
	Interval time.Duration // default 1s
	Timeout  time.Duration // default: Interval
	Weight   int           // -254..254; 0 means "fault while failing"
	Reverse  bool
	Rise     int // default 1
	Fall     int // default 1
	InitFail bool
}

// TrackFile is a track_file (or vrrp_track_file) block.
type TrackFile struct {
	Name          string
	Pos           Pos
	File          string
	Weight        int // default 1
	Reverse       bool
	InitFile      bool
	InitValue     int
	InitOverwrite bool
}

// PluginCheck is vigil's vrrp_check: a named check served by a check plugin. Instances track
// it like a vrrp_script; real servers use it through PLUGIN_CHECK.
type PluginCheck struct {
	Name     string
	Pos      Pos
	Plugin   string
	Interval time.Duration // default 1s
	Timeout  time.Duration // default: Interval
	Rise     int           // default 1
	Fall     int           // default 1
	Weight   int
	Reverse  bool
	InitFail bool
	Params   []Param
}

// NotifyPlugin is vigil's vrrp_notify: a named notify action served by a notify plugin.
type NotifyPlugin struct {
	Name    string
	Pos     Pos
	Plugin  string
	Timeout time.Duration // default 10s
	Params  []Param
}

// Param is one line of a plugin's free-form params block. Values are the words after the key;
// Block holds a nested block's lines. The plugin validates them.
type Param struct {
	Key    string
	Values []string
	Block  []Param
	Pos    Pos
}

// VRRPInstance is a vrrp_instance block.
type VRRPInstance struct {
	Name string
	Pos  Pos

	InitialState string // "BACKUP" (default) or "MASTER"
	Interface    string
	VRID         int
	Priority     int           // default 100
	AdvertInt    time.Duration // default 1s
	Version      int           // 2 or 3; from global vrrp_version when not set
	IPv6         bool          // family of the VIPs (native_ipv6 or IPv6 addresses)
	NoPreempt    bool
	PreemptDelay time.Duration
	Accept       bool
	Strict       bool

	Auth *Auth

	UnicastSrcIP  netip.Addr
	UnicastPeers  []UnicastPeer
	UnicastTTL    int
	McastSrcIP    netip.Addr
	McastGroup    netip.Addr
	DontTrackPrim bool

	SkipCheckAdvAddr bool
	CheckUnicastSrc  bool
	LowerPrioNoAdv   bool
	HigherPrioSend   bool

	VIPs         []*Address
	ExcludedVIPs []*Address
	Routes       []*Route

	TrackInterfaces []TrackRef
	TrackScripts    []TrackRef
	TrackFiles      []TrackRef

	Notify        Notify
	NotifyActions []NameRef
	SMTPAlert     *bool

	UseVMAC      bool
	VMACName     string
	VMACXmitBase bool

	Garp Garp

	// Announce is the announce block: the instance's virtual addresses as BGP routes; nil
	// when absent.
	Announce *Announce

	// Places records where each keyword of the block was written, for messages.
	Places map[string]Pos `json:"-"`
}

// Auth is VRRPv2 authentication.
type Auth struct {
	Type string // "PASS" or "AH"
	Pass string // at most 8 bytes are sent
	Pos  Pos
}

// UnicastPeer is one unicast_peer line.
type UnicastPeer struct {
	Addr   netip.Addr
	MinTTL int
	MaxTTL int
	Pos    Pos
}

// TrackRef names a tracked interface, script, check or file, with its weight.
type TrackRef struct {
	Name      string
	Weight    int
	HasWeight bool
	// Reverse is what the line says after its weight: reverse (true) or noreverse (false),
	// when HasReverse. A line that says neither keeps the tracked definition's own
	// direction (see Apply).
	Reverse    bool
	HasReverse bool
	Pos        Pos
}

// Apply returns the weight and direction that this line gives a tracked vrrp_script,
// vrrp_check or track_file whose own block says weight and reverse. As in keepalived 2.2.7
// (vrrp_track.c, track_file.c): a weight on the line replaces the block's weight, and the
// direction stays the block's unless the line says reverse or noreverse; a line without a
// weight takes both from the block. What the direction then does is fsm.Effective's to
// decide. (A track_interface has no block: its line alone says both.)
func (r TrackRef) Apply(weight int, reverse bool) (int, bool) {
	if r.HasWeight {
		weight = r.Weight
	}
	if r.HasReverse {
		reverse = r.Reverse
	}
	return weight, reverse
}

// NameRef names a definition elsewhere in the file.
type NameRef struct {
	Name string
	Pos  Pos
}

// Notify holds the keepalived-style notify scripts of an instance or sync group.
type Notify struct {
	Master           *Script
	Backup           *Script
	Fault            *Script
	Stop             *Script
	Deleted          *Script
	Generic          *Script // "notify": called for every transition with the state as argument
	MasterRxLowerPri *Script
	PriorityChanges  bool
}

// Address is a virtual or static IP address line.
type Address struct {
	Prefix   netip.Prefix
	Broad    netip.Addr
	Dev      string
	Scope    string
	Label    string
	Peer     netip.Prefix
	NoDAD    bool
	Home     bool
	NoPrefix bool
	NoTrack  bool
	Pos      Pos
}

// Route is a virtual or static route line.
type Route struct {
	Type     string // unicast (default), blackhole, unreachable, prohibit, throw
	Dst      netip.Prefix
	Src      netip.Addr
	Via      netip.Addr
	Dev      string
	Scope    string
	Table    string // as written
	TableID  int    // resolved; 0 when not given (the main table)
	Metric   int
	Protocol string
	NoTrack  bool
	Pos      Pos
}

// SyncGroup is a vrrp_sync_group block.
type SyncGroup struct {
	Name            string
	Pos             Pos
	Members         []NameRef
	Notify          Notify
	NotifyActions   []NameRef
	SMTPAlert       *bool
	GlobalTracking  bool
	TrackInterfaces []TrackRef
	TrackScripts    []TrackRef
	TrackFiles      []TrackRef
}

// VirtualServerGroup is a virtual_server_group block.
type VirtualServerGroup struct {
	Name    string
	Pos     Pos
	Entries []VSGEntry
}

// VSGEntry is one line of a virtual_server_group: an address (range) and port, or a fwmark.
type VSGEntry struct {
	Addr netip.Addr
	// RangeTo is the last address of "A.B.C.D-E", "A.B.C.D-A.B.C.E" or ADDR/LEN; zero for a
	// single address. The range lies within the last octet (IPv4) or the last 16-bit group
	// (IPv6) of Addr: keepalived 2.2.7 counts only that part up, so vigil refuses a wider one.
	RangeTo netip.Addr
	Port    int // 0: no port (only for a persistent service)
	FWMark  int
	// Family is the address family of a fwmark entry ("fwmark N inet|inet6"): 4, 6, or 0
	// when not given (the virtual server's family is used).
	Family int
	Pos    Pos
}

// ServiceKey is one IPVS service: what identifies it in the kernel's table. A fwmark
// service has no address, port or protocol.
type ServiceKey struct {
	Family   int // 4 or 6
	Addr     netip.Addr
	Port     int
	FWMark   int
	Protocol string // TCP, UDP or SCTP; "" for a fwmark service
}

// VirtualServer is a virtual_server block: an IPVS service (or, with a group, one service per
// address of the group and per fwmark) balanced over its real servers.
type VirtualServer struct {
	Pos    Pos
	Addr   netip.Addr // zero for fwmark or group
	Port   int
	FWMark int
	Group  string
	// Family is 4 or 6: the address's family, else ip_family, else that of the sorry server or
	// the real servers that are not tunnelled (as keepalived decides it); 4 when nothing says.
	Family    int
	DelayLoop time.Duration // default 60s
	LBAlgo    string        // IPVS scheduler; default wlc
	// LBKind is the forwarding method that real servers without their own lvs_method get:
	// NAT (default), DR or TUN; Tunnel goes with TUN.
	LBKind string
	Tunnel Tunnel
	// SchedFlag1..3 are the scheduler flags (IPVS service flags sched1..3) of flag-1..flag-3;
	// sh-fallback and mh-fallback set flag 1, sh-port and mh-port flag 2, as in the kernel.
	SchedFlag1 bool
	SchedFlag2 bool
	SchedFlag3 bool
	// OPS is one-packet scheduling (ops): each UDP datagram is scheduled on its own. Only a
	// UDP or a fwmark service keeps it (keepalived drops it for TCP and SCTP, with a warning).
	OPS      bool
	Protocol string // TCP, UDP, SCTP; "" for a fwmark service; UDP when not set (keepalived's)
	// Persist is persistence_timeout (0: not persistent). persistence_granularity alone
	// makes it 360s, as does a service without a port.
	Persist time.Duration
	// PersistMask is persistence_granularity: the mask applied to a client address to choose
	// whose connections stick together. For IPv4 any mask (ipvsadm and keepalived do not require
	// contiguous bits); for IPv6 the mask of the prefix length written. Zero when not set
	// (each client address on its own: 255.255.255.255 or /128).
	PersistMask netip.Addr
	// PersistEngine is persistence_engine (an IPVS persistence engine such as sip), at most
	// 16 bytes; "" when not set.
	PersistEngine string
	// HASuspend is ha_suspend: the checkers of this service run only while one of its
	// addresses is configured on this host (for a VIP: while its vrrp_instance is master;
	// Config.AddressHolders names the instances); keepalived watches the kernel's address
	// events for it. Never on a fwmark service.
	HASuspend  bool
	Quorum     int
	Hysteresis int
	QuorumUp   *Script
	QuorumDown *Script
	Alpha      bool
	Omega      bool
	// SMTPAlert is smtp_alert, resolved: the block's, else global_defs smtp_alert_checker,
	// else global smtp_alert, else false.
	SMTPAlert   bool
	Virtualhost string
	// SorryServer is used while the real servers do not reach the quorum. Its
	// InhibitOnFailure is sorry_server_inhibit; its LVSMethod and Tunnel come from
	// sorry_server_lvs_method, else from the virtual server's lb_kind.
	SorryServer *RealServer
	RealServers []*RealServer
}

// Tunnel is the encapsulation of TUN forwarding, from the words after "TUN" on an lb_kind or
// lvs_method line ("TUN type gue port 6080 csum"). Zero for NAT and DR.
type Tunnel struct {
	Type     string // "ipip" (the default with TUN), "gue" or "gre"
	Port     int    // GUE's destination port, 1..65535; set exactly when Type is gue
	Checksum string // "nocsum" (the default with TUN), "csum" or "remcsum"; ipip has only nocsum, gre no remcsum
}

// RealServer is a real_server block (or a sorry_server line).
type RealServer struct {
	Pos  Pos
	Addr netip.Addr
	// Port is the port as written (0: none); the checkers connect to it. The IPVS
	// destination port is DestPort's.
	Port int
	// Weight is the IPVS weight, 0..2147483647; default the virtual server's weight (1).
	// 0 keeps the server in the table without new connections.
	Weight int
	// InhibitOnFailure sets the weight to 0 on failure instead of removing the server, so
	// that its established connections live on.
	InhibitOnFailure bool
	// LVSMethod is the forwarding method: NAT, DR or TUN (with Tunnel). The real server's own
	// lvs_method, else the virtual server's lb_kind as it stood where the real_server block
	// began, else the block's final lb_kind, else NAT (keepalived's order).
	LVSMethod string
	Tunnel    Tunnel
	// UThreshold and LThreshold are IPVS's upper and lower connection thresholds
	// (uthreshold, lthreshold); 0: none.
	UThreshold int
	LThreshold int
	// SMTPAlert is smtp_alert, resolved: the block's, else global smtp_alert_checker, else
	// global smtp_alert, else true (keepalived's default for real servers, unlike elsewhere).
	SMTPAlert  bool
	NotifyUp   *Script
	NotifyDown *Script
	Checkers   []*Checker
}

// Checker is one health checker of a real server.
type Checker struct {
	Type string // TCP_CHECK, HTTP_GET, SSL_GET, MISC_CHECK or PLUGIN_CHECK
	Pos  Pos

	ConnectIP        netip.Addr
	ConnectPort      int
	BindTo           netip.Addr
	BindPort         int
	ConnectTimeout   time.Duration // default 5s
	Retry            int           // default 1 (keepalived); final value after inheritance
	DelayBeforeRetry time.Duration // default 1s (TCP), 3s (HTTP)
	DelayLoop        time.Duration // default: the virtual server's
	Warmup           time.Duration
	Alpha            bool

	// HTTP_GET / SSL_GET
	URLs         []URL
	Virtualhost  string
	EnableSNI    bool
	SNIName      string
	TLSVerify    bool
	HTTPProtocol string // "", 1.0, 1.0C or 1.1

	// MISC_CHECK
	MiscPath    *Script
	MiscTimeout time.Duration
	// MiscDynamic (misc_dynamic) lets the exit code set the weight, as in keepalived 2.2.7:
	// 0 is up with the real server's configured weight; 1 is down; 2..255 is up with weight
	// code-2 (0..253) in place of the configured one. Without it, 0 is up and anything else
	// (as a kill by a signal or the timeout, with or without it) is down.
	MiscDynamic bool

	// PLUGIN_CHECK: either a named vrrp_check or an inline plugin with params.
	Check  string
	Plugin string
	Params []Param
}

// URL is one url block of HTTP_GET/SSL_GET.
type URL struct {
	Path         string
	Digest       string // lower-case hex MD5 of the body
	StatusCodes  []StatusRange
	Virtualhost  string
	Regex        string // the body must match (the http plugin validates the expression)
	RegexNoMatch bool   // a match fails instead
	RegexOptions []string
	Pos          Pos
}

// StatusRange is an inclusive range of HTTP status codes.
type StatusRange struct{ From, To int }
