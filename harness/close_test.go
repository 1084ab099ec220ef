package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

// fakeEngine answers the calls of removeRun: a run of n containers
// attached to its network and no network; remove is called for each
// container removal.
func fakeEngine(t *testing.T, n int, remove func(r *http.Request, i int)) *client.Client {
	t.Helper()
	return fakeEngineInspected(t, n, remove, func() {})
}

// fakeEngineInspected is fakeEngine whose containers can be inspected:
// inspect is called for each inspect.
func fakeEngineInspected(t *testing.T, n int, remove func(r *http.Request, i int), inspect func()) *client.Client {
	t.Helper()
	var mu sync.Mutex
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/containers/json"):
			var cs []map[string]any
			for i := range n {
				cs = append(cs, map[string]any{"Id": fmt.Sprintf("%064d", i), "HostConfig": map[string]string{"NetworkMode": "meshtls-net"}})
			}
			_ = json.NewEncoder(w).Encode(cs)
		case r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/containers/") && strings.HasSuffix(r.URL.Path, "/json"):
			inspect()
			id := strings.TrimSuffix(r.URL.Path[strings.LastIndex(r.URL.Path, "/containers/")+len("/containers/"):], "/json")
			_ = json.NewEncoder(w).Encode(map[string]any{"Id": id, "State": map[string]any{"Status": "running"}})
		case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/networks"):
			_, _ = w.Write([]byte("[]"))
		case r.Method == http.MethodDelete && strings.Contains(r.URL.Path, "/containers/"):
			mu.Lock()
			i := calls
			calls++
			mu.Unlock()
			remove(r, i)
			w.WriteHeader(http.StatusNoContent)
		default:
			http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusNotImplemented)
		}
	}))
	t.Cleanup(srv.Close)
	cli, err := client.New(client.WithHost("tcp://"+srv.Listener.Addr().String()), client.WithAPIVersion("1.41"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

func withRemoveCallBound(t *testing.T, d time.Duration) {
	old := removeCallBound
	removeCallBound = d
	t.Cleanup(func() { removeCallBound = old })
}

// Close's removal has no bound of its own: many containers that each
// take a while (a loaded engine) are all removed, however long the sum.
func TestRemoveRunTakesAsLongAsTheRemovals(t *testing.T) {
	withRemoveCallBound(t, time.Second)
	const n = 10
	var removed atomic.Int32
	// Each removal takes 0.15 s (the fake engine's own slowness), so the
	// sum is one and a half bounds.
	cli := fakeEngine(t, n, func(*http.Request, int) { removed.Add(1); <-time.After(150 * time.Millisecond) })
	if err := removeRun(context.Background(), cli, "0123abcd"); err != nil {
		t.Fatal(err)
	}
	if removed := removed.Load(); removed != n {
		t.Errorf("%d of %d containers removed", removed, n)
	}
}

// An engine that leaves one removal unanswered ends the removal after one
// bound, saying so, without trying the other containers one bound each.
// The bound leaves the inspects before the removals (removeRun) time to
// be answered on a loaded machine.
func TestRemoveRunStopsAtAHungEngine(t *testing.T) {
	withRemoveCallBound(t, 2*time.Second)
	var tried atomic.Int32
	cli := fakeEngine(t, 50, func(r *http.Request, i int) {
		tried.Add(1)
		if i == 1 {
			<-r.Context().Done() // hangs until the client gives up
		}
	})
	err := removeRun(context.Background(), cli, "0123abcd")
	if err == nil || !strings.Contains(err.Error(), "answered no call of the removal within 2s") {
		t.Fatalf("removeRun = %v", err)
	}
	if tried := tried.Load(); tried != 2 {
		t.Errorf("%d removals tried, want 2: the one before the hang and the hung one", tried)
	}
}
