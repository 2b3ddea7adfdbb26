package config

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Routing tables are named in /etc/iproute2/rt_tables (and its rt_tables.d), as ip route
// and keepalived read them; a distribution may ship the defaults under /usr/share or /usr/lib.
var rtTablesFiles = []string{
	"/etc/iproute2/rt_tables",
	"/usr/share/iproute2/rt_tables",
	"/usr/lib/iproute2/rt_tables",
}

// builtinTables are the names every kernel knows.
var builtinTables = map[string]int{"unspec": 0, "default": 253, "main": 254, "local": 255}

func (o Options) routeTable(name string) (int, bool) {
	if id, ok := builtinTables[name]; ok {
		return id, true
	}
	if o.RouteTable != nil {
		return o.RouteTable(name)
	}
	for _, f := range rtTablesFiles {
		files := []string{f}
		d, _ := filepath.Glob(f + ".d/*.conf")
		files = append(files, d...)
		for _, p := range files {
			if id, ok := lookupRTTable(p, name); ok {
				return id, true
			}
		}
	}
	return 0, false
}

// lookupRTTable finds name in one rt_tables file: "NUMBER NAME" lines, # comments.
func lookupRTTable(path, name string) (int, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) < 2 || fields[1] != name {
			continue
		}
		if id, err := strconv.ParseUint(fields[0], 0, 32); err == nil {
			return int(id), true
		}
	}
	return 0, false
}
