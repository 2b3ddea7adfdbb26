package vm

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// rootModules are what the initramfs must load before it can mount the host's root over
// virtio-9p; whatever else the tests need (ip_vs, veth, nf_conntrack) is loaded later by the
// host's own modprobe from the 9p root. Dependencies come from modules.dep.
var rootModules = []string{"virtio_pci", "9pnet_virtio", "9p"}

// kernel is a bootable image and the modules directory that matches it.
type kernel struct {
	Version string // uname -r, e.g. 6.1.0-57-amd64
	Image   string // /boot/vmlinuz-VERSION
	Modules string // /lib/modules/VERSION
}

// findKernel picks the newest kernel in bootDir whose modules (in modDir/VERSION) can mount a
// 9p root. Debian's cloud kernel (linux-image-cloud-amd64) is built without 9p at all
// (CONFIG_NET_9P is not set), so it is passed over with a message that says so.
func findKernel(bootDir, modDir string) (kernel, error) {
	images, _ := filepath.Glob(filepath.Join(bootDir, "vmlinuz-*"))
	var found []kernel
	var no9p []string
	for _, img := range images {
		v := strings.TrimPrefix(filepath.Base(img), "vmlinuz-")
		k := kernel{Version: v, Image: img, Modules: filepath.Join(modDir, v)}
		mods, err := readModules(k.Modules)
		if err != nil {
			continue
		}
		if !mods.has("9p") || !mods.has("9pnet_virtio") {
			no9p = append(no9p, v)
			continue
		}
		found = append(found, k)
	}
	if len(found) == 0 {
		if len(no9p) > 0 {
			return kernel{}, fmt.Errorf("the kernels in %s (%s) cannot mount a 9p root (Debian's cloud kernel has no 9p): apt-get install linux-image-amd64",
				bootDir, strings.Join(no9p, ", "))
		}
		return kernel{}, fmt.Errorf("no kernel with its modules in %s and %s: apt-get install linux-image-amd64", bootDir, modDir)
	}
	sort.Slice(found, func(i, j int) bool { return versionLess(found[j].Version, found[i].Version) })
	return found[0], nil
}

// modules is what depmod wrote for one kernel: each loadable module's file and the modules it
// needs, and the names of those built into the image.
type modules struct {
	dir     string
	path    map[string]string   // name -> file, relative to dir
	deps    map[string][]string // name -> names it needs (modules.dep lists them transitively)
	builtin map[string]bool
}

// moduleName turns a path from modules.dep into the name modprobe uses: the base name without
// its .ko[.xz|.zst|.gz] suffix, dashes as underscores.
func moduleName(path string) string {
	base := filepath.Base(path)
	if i := strings.Index(base, ".ko"); i >= 0 {
		base = base[:i]
	}
	return strings.ReplaceAll(base, "-", "_")
}

func readModules(dir string) (*modules, error) {
	m := &modules{dir: dir, path: map[string]string{}, deps: map[string][]string{}, builtin: map[string]bool{}}
	f, err := os.Open(filepath.Join(dir, "modules.dep"))
	if err != nil {
		return nil, fmt.Errorf("modules of %s: %w (depmod writes it when the kernel package is installed)", filepath.Base(dir), err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		file, deps, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		name := moduleName(file)
		m.path[name] = file
		for _, d := range strings.Fields(deps) {
			m.deps[name] = append(m.deps[name], moduleName(d))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", f.Name(), err)
	}
	// modules.builtin is optional: without it every module is taken as loadable.
	if b, err := os.ReadFile(filepath.Join(dir, "modules.builtin")); err == nil {
		for _, line := range strings.Fields(string(b)) {
			m.builtin[moduleName(line)] = true
		}
	}
	return m, nil
}

func (m *modules) has(name string) bool {
	name = strings.ReplaceAll(name, "-", "_")
	_, ok := m.path[name]
	return ok || m.builtin[name]
}

// loadOrder returns the files to insmod, dependencies first, each once; built-in modules are
// left out because there is nothing to load.
func (m *modules) loadOrder(names []string) ([]string, error) {
	var order []string
	seen := map[string]bool{}
	var visit func(name string, depth int) error
	visit = func(name string, depth int) error {
		name = strings.ReplaceAll(name, "-", "_")
		if seen[name] || m.builtin[name] {
			return nil
		}
		if depth > 64 {
			return fmt.Errorf("module %s: dependency loop in modules.dep", name)
		}
		file, ok := m.path[name]
		if !ok {
			return fmt.Errorf("module %s is neither in %s/modules.dep nor built in", name, m.dir)
		}
		for _, d := range m.deps[name] {
			if err := visit(d, depth+1); err != nil {
				return err
			}
		}
		seen[name] = true
		if !filepath.IsAbs(file) {
			file = filepath.Join(m.dir, file)
		}
		order = append(order, file)
		return nil
	}
	for _, n := range names {
		if err := visit(n, 0); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// versionLess compares kernel versions the way a person reads them: runs of digits as
// numbers, so 6.1.0-57 is newer than 6.1.0-9.
func versionLess(a, b string) bool {
	for a != "" && b != "" {
		ca, ra := chunk(a)
		cb, rb := chunk(b)
		if ca != cb {
			na, errA := strconv.Atoi(ca)
			nb, errB := strconv.Atoi(cb)
			if errA == nil && errB == nil {
				return na < nb
			}
			return ca < cb
		}
		a, b = ra, rb
	}
	return len(a) < len(b)
}

// chunk splits off the leading run of digits, or of non-digits.
func chunk(s string) (string, string) {
	digit := s[0] >= '0' && s[0] <= '9'
	i := 1
	for i < len(s) && (s[i] >= '0' && s[i] <= '9') == digit {
		i++
	}
	return s[:i], s[i:]
}
