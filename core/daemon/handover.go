package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/vigil-ha/vigil/core/control"
	"github.com/vigil-ha/vigil/core/supervisor"
)

// handoverActions are the control socket's POST /demote and POST /promote: query parameters
// instance (repeated), all=1, and for=DURATION (demote only).
func handoverActions(sup *supervisor.Supervisor) []control.Action {
	parse := func(q url.Values) ([]string, bool, error) {
		names := q["instance"]
		all := false
		if v := q.Get("all"); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, false, control.Refuse(http.StatusBadRequest, fmt.Errorf("all=%q: want 1 or 0", v))
			}
			all = b
		}
		if all == (len(names) > 0) {
			return nil, false, control.Refuse(http.StatusBadRequest, errors.New("name instances or give all=1, not both or neither"))
		}
		return names, all, nil
	}
	refusal := func(err error) error {
		if errors.Is(err, supervisor.ErrUnknownInstance) || errors.Is(err, supervisor.ErrNoInstance) {
			return control.Refuse(http.StatusNotFound, err)
		}
		return err
	}
	return []control.Action{
		{Path: "/demote", Do: func(ctx context.Context, q url.Values) (any, error) {
			names, all, err := parse(q)
			if err != nil {
				return nil, err
			}
			var d time.Duration
			if v := q.Get("for"); v != "" {
				if d, err = time.ParseDuration(v); err != nil || d <= 0 {
					return nil, control.Refuse(http.StatusBadRequest, fmt.Errorf("for=%q: want a positive duration such as 30m or 2h", v))
				}
			}
			res, err := sup.Demote(ctx, names, all, d)
			return res, refusal(err)
		}},
		{Path: "/promote", Do: func(ctx context.Context, q url.Values) (any, error) {
			if q.Has("for") {
				return nil, control.Refuse(http.StatusBadRequest, errors.New("promote takes no for="))
			}
			names, all, err := parse(q)
			if err != nil {
				return nil, err
			}
			res, err := sup.Promote(ctx, names, all)
			return res, refusal(err)
		}},
	}
}
