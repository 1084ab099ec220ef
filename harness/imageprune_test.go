package harness

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/moby/moby/api/types/image"
)

func TestPodImagesToRemove(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	var imgs []image.Summary
	// 12 images, one an hour apart, newest last: i hours old = image 11-i.
	for i := range 12 {
		imgs = append(imgs, image.Summary{Created: now.Add(-time.Duration(11-i) * time.Hour).Unix(), RepoTags: []string{fmt.Sprintf("meshtls/pod:%02d", i)}})
	}
	got := podImagesToRemove(imgs, now)
	slices.Sort(got)
	// The 8 newest (04..11) stay; of 00..03 (8 to 11 hours old) all are
	// older than 2h.
	if want := []string{"meshtls/pod:00", "meshtls/pod:01", "meshtls/pod:02", "meshtls/pod:03"}; !slices.Equal(got, want) {
		t.Fatalf("removed %v, want %v", got, want)
	}
	// Young images stay whatever their number.
	if got := podImagesToRemove(imgs, time.Unix(imgs[0].Created, 0).Add(time.Hour)); len(got) != 0 {
		t.Fatalf("an hour after the oldest was built, removed %v; want none", got)
	}
}
