package plugin

import (
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
