package sdktest

import (
	"strings"
	"testing"

	"github.com/vigil-ha/vigil/sdk"
)

const readme = "# x\n\n" +
	"| param | type | default | meaning |\n" +
	"|---|---|---|---|\n" +
	"| `address` | string | required | host:port |\n" +
	"| `mode` | string | `script` | how \\| what |\n" +
	"| `port` | int | 25, or 465 with `tls` | |\n" +
	"| `timeout` | duration | `5`, per attempt | |\n" +
	"\ntext\n"

func TestParamsCompare(t *testing.T) {
	good := []sdk.ParamSpec{
		{Name: "address", Type: sdk.TypeString, Required: true},
		{Name: "mode", Type: sdk.TypeString, Default: "script"},
		{Name: "port", Type: sdk.TypeInt},
		{Name: "timeout", Type: sdk.TypeDuration, Default: "5"},
	}
	rows, err := paramTable(readme)
	if err != nil {
		t.Fatal(err)
	}
	if errs := compareParams(good, rows); len(errs) > 0 {
		t.Fatalf("the matching table: %q", errs)
	}
	for _, tc := range []struct {
		name   string
		change func([]sdk.ParamSpec) []sdk.ParamSpec
		want   string
	}{
		{"missing", func(p []sdk.ParamSpec) []sdk.ParamSpec {
			return append(p, sdk.ParamSpec{Name: "tls", Type: sdk.TypeBool})
		}, `"tls" (bool) is missing`},
		{"extra", func(p []sdk.ParamSpec) []sdk.ParamSpec { return p[1:] }, `"address" is in the table but not in Describe`},
		{"type", func(p []sdk.ParamSpec) []sdk.ParamSpec { p[2].Type = sdk.TypeString; return p }, `"port" has type "int" in the table, "string"`},
		{"required", func(p []sdk.ParamSpec) []sdk.ParamSpec { p[1].Required = true; return p }, `"mode" is required in Describe`},
		{"not required", func(p []sdk.ParamSpec) []sdk.ParamSpec { p[0].Required = false; return p }, `"address" is documented as required`},
		{"default", func(p []sdk.ParamSpec) []sdk.ParamSpec { p[3].Default = "2"; return p }, `"timeout" defaults to "2" in Describe, the table says "5, per attempt"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			specs := tc.change(append([]sdk.ParamSpec(nil), good...))
			errs := strings.Join(compareParams(specs, rows), "\n")
			if !strings.Contains(errs, tc.want) {
				t.Errorf("differences %q; want one with %q", errs, tc.want)
			}
		})
	}
	if _, err := paramTable("# no table\n| a | b |\n"); err == nil {
		t.Error("a README without a param table passed")
	}
}
