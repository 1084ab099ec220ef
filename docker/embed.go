// Package docker holds the Dockerfiles of the images the harness builds.
package docker

import _ "embed"

// EnvoyDockerfile builds the Envoy image from a prepared rootfs/.
//
//go:embed envoy/Dockerfile
var EnvoyDockerfile []byte

// PodDockerfile builds the in-pod image from a prepared rootfs/ (the running
// binary as /meshtls-pod, and its libraries when it is not static).
//
//go:embed pod/Dockerfile
var PodDockerfile []byte
