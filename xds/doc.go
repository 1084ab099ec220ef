// Package xds serves each proxy its translated resources over ADS (server.go),
// knows when each proxy really runs them (track.go: ACK/NACK per type),
// writes the Envoy bootstrap (bootstrap.go) and reads Envoy's admin API
// (admin.go). What to serve comes from package translate. It knows nothing
// of Docker.
package xds
