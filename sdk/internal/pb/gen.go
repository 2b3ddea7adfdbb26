// Package pb holds the generated code of the vigil plugin protocol (../../proto/vigil_plugin.proto).
// It is committed so that building vigil or a plugin never needs protoc; `go generate` in this
// directory rebuilds it (needs protoc, protoc-gen-go and protoc-gen-go-grpc on PATH).
package pb

//go:generate protoc -I ../../proto --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative vigil_plugin.proto
