package sdk

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Params are read by the plugin; these helpers read the common types the way vigil's own
// plugins and keepalived.conf write them, so that every plugin accepts the same spellings.

// ParseBool reads yes/no, true/false, on/off or 1/0 (any case). An empty value is yes: a
// bare flag such as "tls_verify" on its own line means on, as in keepalived.conf.
func ParseBool(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "", "yes", "true", "on", "1":
		return true, nil
	case "no", "false", "off", "0":
		return false, nil
	}
	return false, fmt.Errorf("%q is not yes or no", s)
}

// ParseDuration reads seconds as keepalived writes them ("2", "0.5") or a Go duration
// ("500ms", "1m"). Negative durations are refused.
func ParseDuration(s string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if f < 0 {
			return 0, fmt.Errorf("%q is negative", s)
		}
		return time.Duration(f * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q: want seconds (2, 0.5) or a duration (500ms)", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("%q is negative", s)
	}
	return d, nil
}

// Bool is the param's value read with ParseBool; the error names the param.
func (p Param) Bool() (bool, error) {
	b, err := ParseBool(p.Value())
	if err != nil {
		return false, fmt.Errorf("%s: %w", p.Key, err)
	}
	return b, nil
}

// Duration is the param's value read with ParseDuration; the error names the param.
func (p Param) Duration() (time.Duration, error) {
	d, err := ParseDuration(p.Value())
	if err != nil {
		return 0, fmt.Errorf("%s: %w", p.Key, err)
	}
	return d, nil
}
