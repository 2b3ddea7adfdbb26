// Package pyexists_test runs vigil-check-pyexists, a check plugin written in Python, through
// the handshake, mutual TLS and calls that vigil uses (sdktest.LaunchCheck), to prove that
// sdk/README.md's "Other languages" recipe is complete.
package pyexists_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-ha/vigil/sdk"
	"github.com/vigil-ha/vigil/sdk/check"
	"github.com/vigil-ha/vigil/sdk/sdktest"
)

// python is the interpreter of the plugin's #! line: Debian's, whose python3-grpcio,
// python3-protobuf and python3-cryptography the plugin uses.
const python = "/usr/bin/python3"

func TestPythonPlugin(t *testing.T) {
	if out, err := exec.Command(python, "-c", "import grpc, google.protobuf, cryptography").CombinedOutput(); err != nil {
		t.Skipf("needs %s with Debian's python3-grpcio, python3-protobuf and python3-cryptography (apt-get install python3-grpcio python3-protobuf python3-cryptography): %v %s", python, err, out)
	}
	protoc, err := exec.LookPath("protoc")
	if err != nil {
		t.Skipf("needs protoc (apt-get install protobuf-compiler) to generate vigil_plugin_pb2.py: %v", err)
	}
	dir := t.TempDir()
	args := []string{"-I", "../../sdk/proto"}
	if _, err := os.Stat("/usr/include/google/protobuf/timestamp.proto"); err == nil {
		args = append(args, "-I", "/usr/include")
	}
	args = append(args, "--python_out="+dir, "vigil_plugin.proto")
	if out, err := exec.Command(protoc, args...).CombinedOutput(); err != nil {
		t.Fatalf("protoc %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	src, err := os.ReadFile("vigil-check-pyexists")
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "vigil-check-pyexists")
	if err := os.WriteFile(exe, src, 0o755); err != nil {
		t.Fatal(err)
	}

	c := sdktest.LaunchCheck(t, exe)
	ctx := t.Context()
	info, err := c.Describe(ctx)
	if err != nil || info.Name != "pyexists" || len(info.Params) != 1 || info.Params[0].Name != "path" || !info.Params[0].Required {
		t.Fatalf("Describe: %+v, %v", info, err)
	}
	sdktest.ParamsDocumented(t, c, "README.md")
	present := filepath.Join(dir, "present")
	if err := os.WriteFile(present, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for name, path := range map[string]string{"here": present, "gone": filepath.Join(dir, "absent")} {
		if _, err := c.Configure(ctx, check.ConfigureRequest{Name: name, Params: []check.Param{{Key: "path", Values: []string{path}}}}); err != nil {
			t.Fatalf("Configure %s: %v", name, err)
		}
	}
	for name, want := range map[string]check.Status{"here": check.OK, "gone": check.Critical} {
		for range 3 {
			resp, err := c.Check(ctx, check.CheckRequest{Name: name})
			if err != nil || resp.Status != want {
				t.Fatalf("Check %s: %+v, %v; want %v", name, resp, err, want)
			}
		}
	}
	// A rejected configuration comes back as the plugin's message, as from a Go plugin.
	_, err = c.Configure(ctx, check.ConfigureRequest{Name: "bad", Params: []check.Param{{Key: "colour", Values: []string{"red"}}}})
	var pe *sdk.PluginError
	if !errors.As(err, &pe) || !strings.Contains(pe.Msg, `unknown param 'colour'`) {
		t.Fatalf("Configure with an unknown param: %v; want the plugin's message", err)
	}
}
