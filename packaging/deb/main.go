// Command deb builds vigil's Debian package: it reads packaging/nfpm.yaml with the nfpm Go
// module (github.com/goreleaser/nfpm/v2; Debian has no nfpm package) and writes
// vigil_VERSION_ARCH.deb into the output directory. `make package` runs it on the tree that
// `make install DESTDIR=dist/stage` laid out; run it from the top of the source tree, where
// the file names in nfpm.yaml (the maintainer scripts) start.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "packaging/deb: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("deb", flag.ContinueOnError)
	config := fs.String("config", "packaging/nfpm.yaml", "the nfpm configuration")
	stage := fs.String("stage", "dist/stage", "the tree make install wrote (DESTDIR), whose files the package holds")
	out := fs.String("out", "dist", "the directory the .deb is written to")
	version := fs.String("version", "", "the package version, Debian's syntax (packaging/version.sh prints it)")
	arch := fs.String("arch", runtime.GOARCH, "the Debian architecture (Go's GOARCH names amd64 and arm64 the same)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *version == "" {
		return fmt.Errorf("-version is required: make package passes packaging/version.sh's")
	}
	stageAbs, err := filepath.Abs(*stage)
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(stageAbs, "usr/sbin/vigil")); err != nil {
		return fmt.Errorf("stage %s has no usr/sbin/vigil: run make install DESTDIR=%s PREFIX=/usr first (make package does): %w", stageAbs, *stage, err)
	}
	vars := map[string]string{"VERSION": *version, "ARCH": *arch, "STAGE": stageAbs}
	cfg, err := nfpm.ParseFileWithEnvMapping(*config, func(k string) string { return vars[k] })
	if err != nil {
		return fmt.Errorf("%s: %w", *config, err)
	}
	info, err := cfg.Get("deb")
	if err != nil {
		return fmt.Errorf("%s: %w", *config, err)
	}
	info = nfpm.WithDefaults(info)
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	target := filepath.Join(*out, deb.Default.ConventionalFileName(info))
	f, err := os.Create(target)
	if err != nil {
		return err
	}
	info.Target = target
	if err := deb.Default.Package(info, f); err != nil {
		f.Close()
		os.Remove(target)
		return fmt.Errorf("%s: %w", *config, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Println(target)
	return nil
}
