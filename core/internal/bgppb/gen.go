// Package bgppb is the generated protocol between vigil's vrrp process and its BGP speaker
// (bgp.proto).
package bgppb

//go:generate protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative bgp.proto
