//go:build !race

package vm

const raceBuild = false
