package harness

import (
	"context"
	"slices"
	"time"

	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/client"
)

// Pod images hold the binary that started the run, so every new build of
// meshtls or of a test binary makes one (about 45 MB). After building one,
// older pod images are removed: the newest podImagesKept always stay, and
// so does any image younger than podImageMinAge (another process may be
// about to start pods from it) or used by a container (the engine refuses
// to remove those without force, which is never used here).
const (
	podImagesKept  = 8
	podImageMinAge = 2 * time.Hour
)

func prunePodImages(ctx context.Context, cli *client.Client, logf func(string, ...any)) {
	res, err := cli.ImageList(ctx, client.ImageListOptions{
		Filters: client.Filters{}.Add("reference", "meshtls/pod").Add("label", labelImage),
	})
	if err != nil {
		logf("listing old pod images: %v", err)
		return
	}
	for _, tag := range podImagesToRemove(res.Items, time.Now()) {
		if _, err := cli.ImageRemove(ctx, tag, client.ImageRemoveOptions{}); err == nil {
			logf("removed old pod image %s", tag)
		}
	}
}

// podImagesToRemove picks the tags of pod images beyond the newest
// podImagesKept that are older than podImageMinAge.
func podImagesToRemove(imgs []image.Summary, now time.Time) []string {
	imgs = slices.Clone(imgs)
	slices.SortFunc(imgs, func(a, b image.Summary) int { return int(b.Created - a.Created) })
	var out []string
	for i, im := range imgs {
		if i >= podImagesKept && now.Sub(time.Unix(im.Created, 0)) >= podImageMinAge {
			out = append(out, im.RepoTags...)
		}
	}
	return out
}
