//go:build tools

// Package tools pins the dex main package so `go mod tidy` keeps its dependencies.
package tools

import _ "github.com/dexidp/dex/cmd/dex"
