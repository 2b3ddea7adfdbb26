package plugin

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/vigil-ha/vigil/sdk"
)

// HasCheck reports whether check plugin name is installed in the plugin directory. It says
// nothing of whether the plugin is safe to run: starting it checks that.
func (h *Host) HasCheck(name string) bool {
	if !validName.MatchString(name) {
		return false
	}
	_, err := os.Stat(filepath.Join(h.opts.Dir, Executable(sdk.KindCheck, name)))
	return err == nil
}

// VerifyCheck looks at check plugin name's file again as starting it does: it must be safe
// to run and have the checksum plugin_sha256 pins. A plugin that is not installed is not
// its business (nil): starting it says so. When the file fails, the plugin's running process
// is stopped (its configuration is kept for a later start), so that nothing goes on using
// a plugin that someone else may have replaced. A reload asks this for every plugin its
// checks keep (core/checksched.PluginVerifier).
func (h *Host) VerifyCheck(name string) error {
	if !h.HasCheck(name) {
		return nil
	}
	if _, err := find(h.opts.Dir, sdk.KindCheck, name, h.opts.Checksums); err != nil {
		h.stop(sdk.KindCheck, name)
		return fmt.Errorf("check plugin %s: %w", name, err)
	}
	return nil
}
