// Package childpb holds the generated code of the core <-> child protocol (child.proto).
package childpb

//go:generate protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative child.proto
