//go:build tools

// Package tools pins the Kubernetes control-plane main packages so `go mod tidy` keeps their dependencies.
// kube-controller-manager finalizes namespaces, creates default ServiceAccounts and runs the workload
// controllers (Deployment -> ReplicaSet -> Pod); kube-scheduler binds those pods to the kwok nodes.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)
