// Package config reads keepalived.conf, unchanged, into vigil's typed model (model.go). The
// steps: preprocess.go and include.go expand includes (through core/opfile: regular files only,
// within limits), @id conditionals, $parameters and ~SEQ/~LST generators as keepalived does;
// lex.go splits a line into words; tree.go builds the statement tree; build.go, vrrp.go and
// lvs*.go fill the model from it, keyword by keyword (rules.go holds the table-driven handlers
// of blocks read thousands of times, keepalived_keywords.go the inventory of keepalived's
// keywords, extensions.go vigil's additions; bgp_build.go reads and checks the bgp and
// announce blocks of bgp.go's model); validate.go checks what needs the whole model.
// Every problem is a Diagnostic (diag.go) that names its file:line:column and says what to do.
// Load (load.go) is the entry point that `vigil -t`, the daemon and a reload use. Subpackage
// watch reports when the files a configuration was read from change.
package config
