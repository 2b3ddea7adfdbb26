package main

import (
	"testing"

	"github.com/vigil-ha/vigil/sdk/sdktest"
)

// TestReadmeParams: README.md's param table says what Describe says (names, types, required,
// defaults), so the docs cannot drift from the code.
func TestReadmeParams(t *testing.T) {
	sdktest.ParamsDocumented(t, newWebhook(), "README.md")
}
