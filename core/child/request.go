package child

import (
	"github.com/vigil-ha/vigil/core/config"
	"github.com/vigil-ha/vigil/core/internal/childpb"
)

// StartRequest is what core hands a child for cfg: the resolved text, and the place in the
// operator's files of each of its lines, so that what the child reports (a plugin that is
// not installed, an interface that is missing) names the operator's file:line:col.
func StartRequest(cfg *config.Config) *childpb.StartRequest {
	text, places := cfg.TextWithPlaces()
	req := &childpb.StartRequest{ConfigText: text, ConfigName: "core"}
	index := map[string]uint32{}
	for _, p := range places {
		i, ok := index[p.File]
		if !ok {
			i = uint32(len(req.Files))
			index[p.File] = i
			req.Files = append(req.Files, p.File)
		}
		req.PlaceFile = append(req.PlaceFile, i)
		req.PlaceLine = append(req.PlaceLine, uint32(p.Line))
		req.PlaceCol = append(req.PlaceCol, uint32(p.Col))
	}
	return req
}

// placesOf undoes StartRequest's encoding of the places; a request without them (or with
// lists that do not agree) gives none, and positions then name the text's own lines.
func placesOf(req *childpb.StartRequest) []config.Pos {
	n := len(req.GetPlaceFile())
	if n == 0 || len(req.GetPlaceLine()) != n || len(req.GetPlaceCol()) != n {
		return nil
	}
	places := make([]config.Pos, n)
	for i := range places {
		f := int(req.PlaceFile[i])
		if f >= len(req.Files) {
			return nil
		}
		places[i] = config.Pos{File: req.Files[f], Line: int(req.PlaceLine[i]), Col: int(req.PlaceCol[i])}
	}
	return places
}
