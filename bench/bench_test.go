package bench

import (
	"testing"
	"time"

	"github.com/meshtls/meshtls/harness"
	"github.com/meshtls/meshtls/mesh"
)

// The matrix bundles load, hold 8 checks each, all with an expectation, and
// declare the same workloads (so `meshtls run bench/matrix` starts pods once).
func TestMatrixBundles(t *testing.T) {
	scs, err := harness.LoadScenarios("matrix")
	if err != nil {
		t.Fatal(err)
	}
	if len(scs) != 8 {
		t.Fatalf("%d matrix files, want the 8 rows of the sidecar outcome matrix", len(scs))
	}
	ids := func(m *mesh.Mesh) (out []string) {
		for _, w := range m.Workloads {
			out = append(out, w.ID())
		}
		return out
	}
	want := ids(scs[0].Mesh)
	for _, s := range scs {
		if len(s.Mesh.Checks) != 8 {
			t.Errorf("%s: %d checks, want 8 (2 clients x 2 servers x 2 ports)", s.Name, len(s.Mesh.Checks))
		}
		for _, c := range s.Mesh.Checks {
			if c.Expect == nil {
				t.Errorf("%s/%s: no expectation", s.Name, c.Name)
			}
		}
		if got := ids(s.Mesh); len(got) != len(want) {
			t.Errorf("%s: workloads %v, want %v", s.Name, got, want)
		}
	}
}

func TestGeneratedMeshesParse(t *testing.T) {
	for name, y := range map[string]string{"six-pods": SixPods(), "six-proxies": SixProxies(), "strict": SixPods() + meshPA("STRICT")} {
		m, err := parse(name, y)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(m.Workloads) != 6 {
			t.Errorf("%s: %d workloads, want 6", name, len(m.Workloads))
		}
	}
}

func TestQuantile(t *testing.T) {
	ms := func(v ...int) (out []time.Duration) {
		for _, x := range v {
			out = append(out, time.Duration(x)*time.Millisecond)
		}
		return out
	}
	for _, tc := range []struct {
		in   []time.Duration
		q    float64
		want time.Duration
	}{
		{nil, 0.5, 0},
		{ms(3), 0.95, 3 * time.Millisecond},
		{ms(5, 1, 3), 0.5, 3 * time.Millisecond},
		{ms(1, 2, 3, 4), 0.5, 2 * time.Millisecond},
		{ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20), 0.95, 19 * time.Millisecond},
	} {
		if got := Quantile(tc.in, tc.q); got != tc.want {
			t.Errorf("Quantile(%v, %v) = %v, want %v", tc.in, tc.q, got, tc.want)
		}
	}
}

// The scoped scale bundle gives w0 its namespace's Sidecar and every other
// pod the namespace default, which imports nothing of the mesh.
func TestScaleBundleScoped(t *testing.T) {
	m, err := parse("scoped", ScaleBundleScoped(5))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Workloads) != 5 || len(m.Checks) != 4 {
		t.Fatalf("%d workloads and %d checks, want 5 and 4", len(m.Workloads), len(m.Checks))
	}
	for _, w := range m.Workloads {
		want := "default"
		if w.Name == "w0" {
			want = "w0"
		}
		if sc := m.SidecarFor(w); sc == nil || sc.Name != want {
			t.Errorf("%s: Sidecar %v, want %s", w.Name, sc, want)
		}
	}
	if _, err := parse("unscoped", ScaleBundle(5)); err != nil {
		t.Fatal(err)
	}
}
