// Package kerneltest holds end-to-end tests of vigil's load balancer in a real kernel: its
// TestVM cases boot one VM (internal/lab/vm, a kernel with IPVS) for the test binary and run
// vigil itself, built by the test, as a director in network namespaces the tests create,
// with a client and Go HTTP backends in namespaces of their own. ipvsadm and vigil status
// are the judges of what vigil programmed; the client's requests, of what the kernel does
// with it. Only documentation addresses are used. The package has no code besides its tests.
package kerneltest
