package sdktest

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/vigil-ha/vigil/sdk"
)

// Describer is what check and notify plugins share: check.Checker and notify.Notifier are both.
type Describer interface {
	Describe(ctx context.Context) (sdk.Info, error)
}

// ParamsDocumented fails t unless the param table in the Markdown file readme documents
// exactly the params plugin's Describe lists, so that a plugin's docs cannot drift from its
// code. The table is the one (or every one) whose header begins
//
//	| param | type | default |
//
// with one row per param: its name in backquotes, its type as Describe gives it (int, bool,
// duration, ...), and in the default column `required` for a required param, or the
// ParamSpec's Default (backquotes allowed; prose may follow after a comma or a space), or,
// when Default is empty, anything (say what happens, or leave it empty). Further columns
// are free. examples/check-hello's README shows the form.
func ParamsDocumented(t testing.TB, plugin Describer, readme string) {
	t.Helper()
	info, err := plugin.Describe(context.Background())
	if err != nil {
		t.Fatalf("sdktest: Describe: %v", err)
	}
	b, err := os.ReadFile(readme)
	if err != nil {
		t.Fatalf("sdktest: the README to compare the params with: %v", err)
	}
	rows, err := paramTable(string(b))
	if err != nil {
		t.Fatalf("sdktest: %s: %v", readme, err)
	}
	for _, e := range compareParams(info.Params, rows) {
		t.Errorf("sdktest: %s: %s", readme, e)
	}
}

// paramRow is one row of a README's param table, its cells with backquotes removed.
type paramRow struct {
	line                int
	name, typ, defaultv string
}

// paramTable reads the rows of every table in md whose header begins | param | type | default |.
func paramTable(md string) ([]paramRow, error) {
	var rows []paramRow
	in, found := false, false
	for i, line := range strings.Split(md, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "|") {
			in = false
			continue
		}
		cells := splitRow(line)
		if !in {
			if len(cells) >= 3 && strings.EqualFold(cells[0], "param") && strings.EqualFold(cells[1], "type") && strings.EqualFold(cells[2], "default") {
				in, found = true, true
			}
			continue
		}
		if strings.Trim(strings.Join(cells, ""), "-: ") == "" {
			continue // the |---|---| line
		}
		if len(cells) < 3 {
			return nil, fmt.Errorf("line %d: a param row needs name, type and default cells: %s", i+1, line)
		}
		rows = append(rows, paramRow{line: i + 1, name: unquote(cells[0]), typ: unquote(cells[1]), defaultv: unquote(cells[2])})
	}
	if !found {
		return nil, fmt.Errorf("no param table (a header | param | type | default | ...)")
	}
	return rows, nil
}

// splitRow splits a Markdown table row into its trimmed cells; `\|` stays in its cell.
func splitRow(line string) []string {
	line = strings.TrimSuffix(strings.TrimPrefix(line, "|"), "|")
	var cells []string
	var cur strings.Builder
	for i := 0; i < len(line); i++ {
		switch {
		case line[i] == '\\' && i+1 < len(line) && line[i+1] == '|':
			cur.WriteByte('|')
			i++
		case line[i] == '|':
			cells = append(cells, strings.TrimSpace(cur.String()))
			cur.Reset()
		default:
			cur.WriteByte(line[i])
		}
	}
	return append(cells, strings.TrimSpace(cur.String()))
}

func unquote(s string) string { return strings.TrimSpace(strings.ReplaceAll(s, "`", "")) }

// compareParams lists every difference between what Describe says and the README's rows.
func compareParams(specs []sdk.ParamSpec, rows []paramRow) []string {
	var errs []string
	byName := map[string]paramRow{}
	for _, r := range rows {
		if _, dup := byName[r.name]; dup {
			errs = append(errs, fmt.Sprintf("line %d: param %q documented twice", r.line, r.name))
		}
		byName[r.name] = r
	}
	for _, p := range specs {
		r, ok := byName[p.Name]
		if !ok {
			errs = append(errs, fmt.Sprintf("param %q (%s) is missing from the param table", p.Name, p.Type))
			continue
		}
		delete(byName, p.Name)
		if r.typ != string(p.Type) {
			errs = append(errs, fmt.Sprintf("line %d: param %q has type %q in the table, %q in Describe", r.line, p.Name, r.typ, p.Type))
		}
		switch {
		case p.Required:
			if r.defaultv != "required" {
				errs = append(errs, fmt.Sprintf("line %d: param %q is required in Describe: write `required` in its default cell, not %q", r.line, p.Name, r.defaultv))
			}
		case r.defaultv == "required":
			errs = append(errs, fmt.Sprintf("line %d: param %q is documented as required, but Describe does not require it", r.line, p.Name))
		case p.Default != "":
			d := r.defaultv
			if d != p.Default && !strings.HasPrefix(d, p.Default+",") && !strings.HasPrefix(d, p.Default+" ") {
				errs = append(errs, fmt.Sprintf("line %d: param %q defaults to %q in Describe, the table says %q", r.line, p.Name, p.Default, d))
			}
		}
	}
	var extra []string
	for name := range byName {
		extra = append(extra, name)
	}
	slices.Sort(extra)
	for _, name := range extra {
		errs = append(errs, fmt.Sprintf("line %d: param %q is in the table but not in Describe", byName[name].line, name))
	}
	return errs
}
