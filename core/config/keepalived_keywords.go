package config

// knownKeepalived lists, per block context, the keywords keepalived itself accepts.
// vigil uses it to tell a typo ("unknown keyword") from a keepalived feature vigil does not
// implement ("not supported by vigil"). Names only; derived from keepalived's documented grammar.
//
// Inventory taken from keepalived commit 9cbce3e2117fd7dfbddf3cd4c45dad6283189176. Keywords that
// keepalived only registers when built with optional features (SNMP, DBus, nftables, BFD, VMAC,
// regex checks, track_process, ...) and deprecated spellings it still accepts are included.
// Context keys are the slash-joined path of the keywords that open the enclosing blocks;
// a nil slice marks a value block whose lines are data rather than keywords.
// Config-file directives handled by the reader itself (include, @ and @^ line guards, $NAME=
// definitions, ~SEQ) are not keywords and are not listed.
var knownKeepalived = map[string][]string{
	"": { // top level
		"linkbeat_use_polling", "net_namespace", "net_namespace_ipvs", "namespace_with_ipsets",
		"use_pid_dir", "instance", "child_wait_time", "global_defs", "track_group",
		"static_ipaddress", "static_routes", "static_rules", "vrrp_sync_group", "garp_group",
		"linkbeat_interfaces", "vrrp_instance", "vrrp_script", "vrrp_track_process",
		"interface_up_down_delays", "SSL", "virtual_server_group", "virtual_server", "bfd_instance",
		"track_file", "vrrp_track_file",
	},
	"global_defs": {
		"process_names", "process_name", "vrrp_process_name", "checker_process_name",
		"lvs_process_name", "bfd_process_name", "use_symlink_paths", "set_supplementary_groups",
		"router_id", "notification_email_from", "smtp_server", "smtp_helo_name",
		"smtp_connect_timeout", "notification_email", "smtp_alert", "startup_script",
		"startup_script_timeout", "shutdown_script", "shutdown_script_timeout", "max_auto_priority",
		"min_auto_priority_delay", "smtp_alert_vrrp", "smtp_alert_checker",
		"checker_log_all_failures", "dynamic_interfaces", "no_email_faults", "default_interface",
		"disable_local_igmp", "v3_checksum_as_v2", "lvs_timeouts", "lvs_flush", "lvs_flush_on_stop",
		"lvs_flush_onstop", "lvs_sync_daemon", "vrrp_mcast_group4", "vrrp_mcast_group6",
		"vrrp_garp_master_delay", "vrrp_garp_master_repeat", "vrrp_garp_master_refresh",
		"vrrp_garp_master_refresh_repeat", "vrrp_garp_lower_prio_delay",
		"vrrp_garp_lower_prio_repeat", "vrrp_down_timer_adverts", "vrrp_garp_interval",
		"vrrp_gna_interval", "vrrp_min_garp", "vrrp_garp_extra_if", "vrrp_vmac_garp_intvl",
		"vrrp_lower_prio_no_advert", "vrrp_higher_prio_send_advert", "vrrp_version", "vrrp_iptables",
		"vrrp_ipsets", "nftables", "nftables_priority", "nftables_ifindex", "vrrp_check_unicast_src",
		"vrrp_skip_check_adv_addr", "vrrp_strict", "vrrp_priority", "vrrp_no_swap",
		"vrrp_rt_priority", "vrrp_cpu_affinity", "vrrp_rlimit_rttime", "vrrp_rlimit_rtime",
		"nftables_ipvs", "nftables_ipvs_priority", "nftables_ipvs_start_fwmark", "nftables_counters",
		"notify_fifo", "notify_fifo_script", "vrrp_notify_fifo", "vrrp_notify_fifo_script",
		"vrrp_notify_priority_changes", "fifo_write_vrrp_states_on_reload", "lvs_notify_fifo",
		"lvs_notify_fifo_script", "checker_priority", "checker_no_swap", "checker_rt_priority",
		"checker_cpu_affinity", "checker_rlimit_rttime", "checker_rlimit_rtime", "bfd_priority",
		"bfd_no_swap", "bfd_rt_priority", "bfd_cpu_affinity", "bfd_rlimit_rttime", "bfd_rlimit_rtime",
		"snmp_socket", "enable_traps", "enable_snmp_vrrp", "enable_snmp_keepalived",
		"enable_snmp_rfc", "enable_snmp_rfcv2", "enable_snmp_rfcv3", "enable_snmp_checker",
		"snmp_vs_stats_update_interval", "snmp_rs_stats_update_interval", "enable_dbus",
		"dbus_service_name", "dbus_no_interface_name", "script_user", "enable_script_security",
		"vrrp_netlink_cmd_rcv_bufs", "vrrp_netlink_cmd_rcv_bufs_force",
		"vrrp_netlink_monitor_rcv_bufs", "vrrp_netlink_monitor_rcv_bufs_force",
		"process_monitor_rcv_bufs", "process_monitor_rcv_bufs_force", "lvs_netlink_cmd_rcv_bufs",
		"lvs_netlink_cmd_rcv_bufs_force", "lvs_netlink_monitor_rcv_bufs",
		"lvs_netlink_monitor_rcv_bufs_force", "rs_init_notifies", "no_checker_emails",
		"vrrp_rx_bufs_policy", "vrrp_rx_bufs_multiplier", "vrrp_startup_delay",
		"vrrp_delay_after_boot", "log_unknown_vrids", "vrrp_owner_ignore_adverts", "vmac_prefix",
		"vmac_addr_prefix", "umask", "random_seed", "reload_check_config", "reload_time_file",
		"reload_repeat", "reload_file", "include_check", "config_save_dir", "tmp_config_directory",
		"data_use_instance", "json_version", "iproute_usr_dir", "iproute_etc_dir", "state_dump_file",
		"stats_dump_file", "json_dump_file",
	},
	"global_defs/notification_email": nil, // value block: one e-mail address per line
	"track_group": {
		"group",
	},
	"track_group/group": nil, // value block: vrrp_instance names
	"static_ipaddress":  nil, // value block: address lines
	"static_routes":     nil, // value block: route lines
	"static_rules":      nil, // value block: rule lines
	"vrrp_sync_group": {
		"group", "track_interface", "track_script", "track_file", "track_process", "track_bfd",
		"notify_backup", "notify_master", "notify_fault", "notify_stop", "notify", "smtp_alert",
		"global_tracking", "sync_group_tracking_weight", "notify_priority_changes",
	},
	"vrrp_sync_group/group":           nil, // value block: vrrp_instance names
	"vrrp_sync_group/track_interface": nil, // value block
	"vrrp_sync_group/track_script":    nil, // value block
	"vrrp_sync_group/track_file":      nil, // value block
	"vrrp_sync_group/track_process":   nil, // value block
	"vrrp_sync_group/track_bfd":       nil, // value block
	"garp_group": {
		"garp_interval", "gna_interval", "interface", "interfaces",
	},
	"garp_group/interfaces": nil, // value block: interface names
	"linkbeat_interfaces":   nil, // value block: interface names
	"vrrp_instance": {
		"use_vmac", "use_vmac_addr", "vmac_xmit_base", "use_ipvlan", "unicast_peer",
		"unicast_fault_no_peer", "check_unicast_src", "old_unicast_checksum", "native_ipv6", "state",
		"interface", "vrf", "dont_track_primary", "track_interface", "track_script", "track_file",
		"track_process", "track_bfd", "mcast_src_ip", "unicast_src_ip", "mcast_dst_ip",
		"track_src_ip", "virtual_router_id", "unicast_ttl", "version", "priority", "advert_int",
		"virtual_ipaddress", "virtual_ipaddress_excluded", "no_virtual_ipaddress",
		"promote_secondaries", "linkbeat_use_polling", "v3_checksum_as_v2", "virtual_routes",
		"virtual_rules", "accept", "no_accept", "skip_check_adv_addr", "strict_mode", "preempt",
		"nopreempt", "preempt_delay", "debug", "notify_backup", "notify_master", "notify_fault",
		"notify_stop", "notify_deleted", "notify", "notify_master_rx_lower_pri", "smtp_alert",
		"notify_priority_changes", "lvs_sync_daemon_interface", "garp_master_delay",
		"garp_master_refresh", "garp_master_repeat", "garp_master_refresh_repeat",
		"garp_lower_prio_delay", "garp_lower_prio_repeat", "down_timer_adverts",
		"timer_expired_backup", "thread_timer_expired", "garp_extra_if", "vmac_garp_intvl",
		"lower_prio_no_advert", "higher_prio_send_advert", "owner_ignore_adverts",
		"kernel_rx_buf_size", "authentication", "auth_hmac",
	},
	"vrrp_instance/authentication": {
		"auth_type", "auth_pass",
	},
	"vrrp_instance/auth_hmac": {
		"key", "active_key", "time_window", "anti_replay", "mode",
	},
	"vrrp_instance/unicast_peer":               nil, // value block: peer addresses
	"vrrp_instance/track_interface":            nil, // value block
	"vrrp_instance/track_script":               nil, // value block
	"vrrp_instance/track_file":                 nil, // value block
	"vrrp_instance/track_process":              nil, // value block
	"vrrp_instance/track_bfd":                  nil, // value block
	"vrrp_instance/virtual_ipaddress":          nil, // value block: address lines
	"vrrp_instance/virtual_ipaddress_excluded": nil, // value block: address lines
	"vrrp_instance/virtual_routes":             nil, // value block: route lines
	"vrrp_instance/virtual_rules":              nil, // value block: rule lines
	"vrrp_script": {
		"script", "interval", "timeout", "weight", "rise", "fall", "user", "init_fail",
	},
	"vrrp_track_process": {
		"process", "param_match", "weight", "quorum", "quorum_max", "delay", "terminate_delay",
		"fork_delay", "full_command",
	},
	"interface_up_down_delays": nil, // value block: interface and delay lines
	"SSL": {
		"password", "ca", "certificate", "key",
	},
	"virtual_server_group": nil, // value block: address/range and fwmark lines
	"virtual_server": {
		"ip_family", "retry", "delay_before_retry", "warmup", "connect_timeout", "delay_loop",
		"inhibit_on_failure", "lb_algo", "lvs_sched", "hashed", "ops", "flag-1", "flag-2", "flag-3",
		"sh-port", "sh-fallback", "mh-port", "mh-fallback", "lb_kind", "lvs_method",
		"persistence_engine", "persistence_timeout", "persistence_granularity", "protocol",
		"ha_suspend", "smtp_alert", "virtualhost", "snmp_name", "alpha", "omega", "quorum_up",
		"quorum_down", "quorum", "hysteresis", "weight", "sorry_server", "sorry_server_inhibit",
		"sorry_server_lvs_method", "real_server",
	},
	"virtual_server/real_server": {
		"weight", "lvs_method", "uthreshold", "lthreshold", "inhibit_on_failure", "notify_up",
		"notify_down", "alpha", "retry", "delay_before_retry", "warmup", "connect_timeout",
		"delay_loop", "smtp_alert", "virtualhost", "snmp_name", "MISC_CHECK", "SMTP_CHECK",
		"TCP_CHECK", "PING_CHECK", "UDP_CHECK", "HTTP_GET", "SSL_GET", "DNS_CHECK", "FILE_CHECK",
		"BFD_CHECK",
	},
	"virtual_server/real_server/MISC_CHECK": {
		"retry", "delay_before_retry", "warmup", "delay_loop", "alpha", "log_all_failures",
		"misc_path", "misc_timeout", "misc_dynamic", "user",
	},
	"virtual_server/real_server/SMTP_CHECK": {
		"helo_name", "connect_ip", "connect_port", "bindto", "bind_port", "bind_if",
		"connect_timeout", "fwmark", "retry", "delay_before_retry", "warmup", "delay_loop", "alpha",
		"log_all_failures", "host",
	},
	"virtual_server/real_server/SMTP_CHECK/host": {
		"connect_ip", "connect_port", "bindto", "bind_port", "bind_if", "connect_timeout", "fwmark",
		"retry", "delay_before_retry", "warmup", "delay_loop", "alpha", "log_all_failures",
	},
	"virtual_server/real_server/TCP_CHECK": {
		"connect_ip", "connect_port", "bindto", "bind_port", "bind_if", "connect_timeout", "fwmark",
		"retry", "delay_before_retry", "warmup", "delay_loop", "alpha", "log_all_failures",
	},
	"virtual_server/real_server/PING_CHECK": {
		"connect_ip", "connect_port", "bindto", "bind_port", "bind_if", "connect_timeout", "fwmark",
		"retry", "delay_before_retry", "warmup", "delay_loop", "alpha", "log_all_failures",
	},
	"virtual_server/real_server/UDP_CHECK": {
		"connect_ip", "connect_port", "bindto", "bind_port", "bind_if", "connect_timeout", "fwmark",
		"retry", "delay_before_retry", "warmup", "delay_loop", "alpha", "log_all_failures", "payload",
		"require_reply", "min_reply_length", "max_reply_length",
	},
	"virtual_server/real_server/HTTP_GET": {
		"connect_ip", "connect_port", "bindto", "bind_port", "bind_if", "connect_timeout", "fwmark",
		"retry", "delay_before_retry", "warmup", "delay_loop", "alpha", "log_all_failures",
		"nb_get_retry", "virtualhost", "http_protocol", "enable_sni", "sni_name", "fast_recovery",
		"url",
	},
	"virtual_server/real_server/HTTP_GET/url": {
		"path", "digest", "status_code", "virtualhost", "regex", "regex_no_match", "regex_options",
		"regex_min_offset", "regex_max_offset", "regex_stack",
	},
	"virtual_server/real_server/SSL_GET": {
		"connect_ip", "connect_port", "bindto", "bind_port", "bind_if", "connect_timeout", "fwmark",
		"retry", "delay_before_retry", "warmup", "delay_loop", "alpha", "log_all_failures",
		"nb_get_retry", "virtualhost", "http_protocol", "enable_sni", "sni_name", "fast_recovery",
		"tls_compliant", "url",
	},
	"virtual_server/real_server/SSL_GET/url": {
		"path", "digest", "status_code", "virtualhost", "regex", "regex_no_match", "regex_options",
		"regex_min_offset", "regex_max_offset", "regex_stack", "tls_compliant",
	},
	"virtual_server/real_server/DNS_CHECK": {
		"connect_ip", "connect_port", "bindto", "bind_port", "bind_if", "connect_timeout", "fwmark",
		"retry", "delay_before_retry", "warmup", "delay_loop", "alpha", "log_all_failures", "type",
		"name",
	},
	"virtual_server/real_server/FILE_CHECK": {
		"track_file", "weight",
	},
	"virtual_server/real_server/BFD_CHECK": {
		"name", "alpha",
	},
	"bfd_instance": {
		"source_ip", "neighbor_ip", "neighbour_ip", "min_rx", "min_tx", "idle_tx", "multiplier",
		"passive", "ttl", "hoplimit", "max_hops", "multihop", "weight", "vrrp", "checker",
	},
	"track_file": {
		"file", "weight", "init_file",
	},
	"vrrp_track_file": {
		"file", "weight", "init_file",
	},
}

// Keywords that open a sub-block in one context but are a plain keyword taking
// arguments in another:
//
//   - track_file: at top level (and as the deprecated vrrp_track_file) it opens a named
//     block holding file/weight/init_file; inside vrrp_instance and vrrp_sync_group it
//     opens a value block of tracked-file names; inside real_server/FILE_CHECK it is a
//     single-line keyword naming the tracked file.
