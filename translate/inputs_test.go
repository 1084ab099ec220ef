package translate

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"
	securityapi "istio.io/api/security/v1beta1"
	typeapi "istio.io/api/type/v1beta1"
	security "istio.io/client-go/pkg/apis/security/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshtls/meshtls/mesh"
)

// paVariants are PeerAuthentication changes of m's bundle: each policy set
// to each mode, and a workload-level policy (with a port-level setting)
// added for each proxy in each mode. Each variant is a fresh load.
func paVariants(t *testing.T, file string) map[string]*mesh.Mesh {
	t.Helper()
	modes := []securityapi.PeerAuthentication_MutualTLS_Mode{
		securityapi.PeerAuthentication_MutualTLS_STRICT, securityapi.PeerAuthentication_MutualTLS_PERMISSIVE,
		securityapi.PeerAuthentication_MutualTLS_DISABLE, securityapi.PeerAuthentication_MutualTLS_UNSET,
	}
	out := map[string]*mesh.Mesh{}
	base := loadFile(t, file)
	for i := range base.PeerAuthentications {
		for _, md := range modes {
			m := loadFile(t, file)
			m.PeerAuthentications[i].Spec.Mtls = &securityapi.PeerAuthentication_MutualTLS{Mode: md}
			out[fmt.Sprintf("PeerAuthentication %d set to %s", i, md)] = m
		}
	}
	for _, w := range base.Workloads {
		if !w.HasProxy() || len(w.Labels) == 0 || w.Namespace == mesh.RootNamespace {
			continue
		}
		for _, md := range modes {
			m := loadFile(t, file)
			pa := &security.PeerAuthentication{
				ObjectMeta: metav1.ObjectMeta{Name: "only-" + w.Name, Namespace: w.Namespace},
				Spec: securityapi.PeerAuthentication{
					Selector: &typeapi.WorkloadSelector{MatchLabels: w.Labels},
					Mtls:     &securityapi.PeerAuthentication_MutualTLS{Mode: md},
				},
			}
			if len(w.Ports) > 0 {
				pa.Spec.PortLevelMtls = map[uint32]*securityapi.PeerAuthentication_MutualTLS{
					w.Ports[0].Port: {Mode: securityapi.PeerAuthentication_MutualTLS_PERMISSIVE},
				}
			}
			m.PeerAuthentications = append(m.PeerAuthentications, pa)
			out[fmt.Sprintf("workload policy for %s, %s", w.ID(), md)] = m
		}
	}
	return out
}

func sameResources(a, b *Resources) bool {
	eq := func(x, y []proto.Message) bool {
		return slices.EqualFunc(x, y, proto.Equal)
	}
	msgs := func(r *Resources) [][]proto.Message {
		var l, c, rt, e, s []proto.Message
		for _, v := range r.Listeners {
			l = append(l, v)
		}
		for _, v := range r.Clusters {
			c = append(c, v)
		}
		for _, v := range r.Routes {
			rt = append(rt, v)
		}
		for _, v := range r.Endpoints {
			e = append(e, v)
		}
		for _, v := range r.Secrets {
			s = append(s, v)
		}
		return [][]proto.Message{l, c, rt, e, s}
	}
	ma, mb := msgs(a), msgs(b)
	for i := range ma {
		if !eq(ma[i], mb[i]) {
			return false
		}
	}
	return fmt.Sprint(a.Decisions) == fmt.Sprint(b.Decisions)
}

// A proxy whose key did not change translates to the same resources: the
// harness skips translating (and pushing) it on that basis. Over every
// fixture and bundle and many PeerAuthentication changes; some changes
// must leave most keys alone (else the key would be useless) and some
// must change them.
func TestInputsKeyDecidesTranslation(t *testing.T) {
	files := fixtureFiles(t)
	matrix, _ := filepath.Glob("../bench/matrix/*.yaml")
	files = append(files, matrix...)
	var same, changed, onlyOne int
	for _, f := range files {
		base := loadFile(t, f)
		env := testEnv(t, base)
		in0, err := NewInputs(base)
		if err != nil {
			t.Fatal(err)
		}
		res0 := map[string]*Resources{}
		for _, w := range base.Workloads {
			if w.HasProxy() {
				if res0[w.ID()], err = Translate(base, w, env); err != nil {
					t.Fatalf("%s: %v", f, err)
				}
			}
		}
		for name, m := range paVariants(t, f) {
			in, err := NewInputs(m)
			if err != nil {
				t.Fatal(err)
			}
			keysChanged := 0
			for _, w := range m.Workloads {
				if !w.HasProxy() {
					continue
				}
				w0, _ := base.Workload(w.ID())
				if in.Key(w) != in0.Key(w0) {
					changed++
					keysChanged++
					continue
				}
				same++
				res, err := Translate(m, w, env)
				if err != nil {
					continue // the variant is invalid for this proxy; nothing to reuse
				}
				if !sameResources(res, res0[w.ID()]) {
					t.Errorf("%s, %s: proxy %s kept its inputs key but translates differently", f, name, w.ID())
				}
			}
			if keysChanged == 1 {
				onlyOne++
			}
		}
	}
	t.Logf("proxy keys kept %d, changed %d; variants changing one proxy's key only: %d", same, changed, onlyOne)
	if same == 0 || changed == 0 || onlyOne == 0 {
		t.Errorf("kept %d, changed %d, one-proxy changes %d: the test did not exercise both outcomes", same, changed, onlyOne)
	}
}

// The same mesh translates to the same bytes: the xDS server compares
// content hashes to send only what changed, and a map packed in random
// order (a JSON access-log format) would look like a change every time.
func TestTranslateIsDeterministic(t *testing.T) {
	for _, f := range fixtureFiles(t) {
		m := loadFile(t, f)
		env := testEnv(t, m)
		for _, w := range m.Workloads {
			if !w.HasProxy() {
				continue
			}
			a, err := Translate(m, w, env)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := Translate(m, w, env)
			if !sameResources(a, b) {
				t.Errorf("%s: proxy %s translates differently twice", f, w.ID())
			}
		}
	}
}
