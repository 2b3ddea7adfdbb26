// Package example shows how a package runs some of its tests inside the VM of internal/lab/vm:
// a TestMain that calls vm.Main, and tests named TestVM... that begin with vm.Guest(t). The
// other tests run on the host as usual. It holds no code besides its tests.
package example
