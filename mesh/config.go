package mesh

import (
	"errors"
	"fmt"
)

// document is one YAML document as read, kept so that WithConfig can load
// the bundle again with more config on top.
type document struct {
	src   Source
	data  []byte
	added bool // came from WithConfig, not from the bundle
}

// notConfig are the kinds WithConfig refuses, and why: they declare pods
// (which a running mesh cannot change), what is injected into them, or
// calls.
var notConfig = map[string]string{
	"Workload":    "it declares a pod",
	"Pod":         "it declares a pod",
	"Deployment":  "it declares pods",
	"StatefulSet": "it declares pods",
	"DaemonSet":   "it declares pods",
	"ReplicaSet":  "it declares pods",
	"Namespace":   "its labels decide which pods get a sidecar",
}

// ConfigKinds are the kinds WithConfig takes, for messages.
const ConfigKinds = "PeerAuthentication, DestinationRule, Gateway, VirtualService, ServiceEntry, Sidecar, Service, Endpoints, EndpointSlice, Secret, ConfigMap, NetworkPolicy"

// WithConfig returns the bundle m was loaded from with the config in data
// added (file names it in errors), loaded and validated as Load does: the
// same problems in the same words. data holds Istio resources, Services and
// TLS Secrets (ConfigKinds); a document that declares pods (Workload, Pod,
// Deployment, ...), a Namespace or a Check is refused, since the pods of a
// running mesh cannot change and a call is made, not configured.
//
// m's own Check documents are left out, and so is config an earlier
// WithConfig added: each call starts again from the bundle as loaded, so
// the config given replaces the previous one.
func (m *Mesh) WithConfig(file string, data []byte) (*Mesh, error) {
	if m.docs == nil {
		return nil, errors.New("mesh: WithConfig needs a Mesh from Load or Parse, which keep the bundle's documents (this one was built in Go)")
	}
	l := newLoader()
	l.skipChecks = true
	for _, d := range m.docs {
		if !d.added {
			l.parseDoc(d.src, d.data)
			l.m.docs = append(l.m.docs, d)
		}
	}
	l.skipChecks, l.configOnly = false, true
	l.parseFile(file, data)
	return l.finish()
}

// refuseNotConfig reports a document WithConfig does not take; it says
// whether it did.
func (l *loader) refuseNotConfig(src Source, kind string, obj map[string]any) bool {
	if !l.configOnly {
		return false
	}
	why, ok := notConfig[kind]
	switch {
	case ok:
		why = fmt.Sprintf("not config: %s, and the pods of a running mesh cannot change; only %s may be applied (start a new mesh for other pods)", why, ConfigKinds)
	case kind == "Check":
		why = "not config: a Check is a call; make it with Runtime.Call (or put it in the bundle the mesh starts from)"
	default:
		return false
	}
	l.add(src, kind, objectName(obj), "kind", why)
	return true
}
