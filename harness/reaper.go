package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/magiconair/properties"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
)

// ryukEnv turns testcontainers' reaper (Ryuk) off or on for a process. The
// harness does not need the reaper: it removes what it creates by label
// and a later run sweeps what a dead one left. Where no registry answers,
// the reaper's image cannot be pulled and every container would fail.
const ryukEnv = "TESTCONTAINERS_RYUK_DISABLED"

// NoReaper turns testcontainers' reaper off for this process unless
// TESTCONTAINERS_RYUK_DISABLED is already set. It is for a program's main
// or a TestMain (meshtls and this repository's tests call it); the harness
// itself never changes the environment.
func NoReaper() {
	if _, set := os.LookupEnv(ryukEnv); !set {
		_ = os.Setenv(ryukEnv, "true")
	}
}

var reaperCheck struct {
	once sync.Once
	err  error
}

// checkReaper runs once per process, before testcontainers first reads its
// configuration. When the process chose (the environment variable or
// ryuk.disabled in ~/.testcontainers.properties) or a registry mirror is
// configured, testcontainers does as told. When nobody chose, the reaper is
// on by default and needs its image: present or pullable, it runs as
// testcontainers intends; otherwise it could only fail every container, so
// testcontainers' configuration for this process is read with the reaper
// off (the environment is restored at once), which keeps a Go test in a
// user's module working with no environment variables. If that
// configuration was already read with the reaper on, the error gives the
// fix.
func checkReaper(ctx context.Context) error {
	reaperCheck.once.Do(func() { reaperCheck.err = decideReaper(ctx) })
	return reaperCheck.err
}

func decideReaper(ctx context.Context) error {
	if v, ok := os.LookupEnv(ryukEnv); ok {
		if disabled, err := strconv.ParseBool(v); err == nil {
			if disabled {
				return nil
			}
			return reaperImageReady(ctx, true)
		}
	}
	props := tcProperties()
	if props.GetString("ryuk.disabled", "") != "" || props.GetString("hub.image.name.prefix", "") != "" ||
		os.Getenv("TESTCONTAINERS_HUB_IMAGE_NAME_PREFIX") != "" {
		return nil // the user configured testcontainers: theirs to run
	}
	if reaperImageReady(ctx, false) == nil {
		return nil
	}
	_ = os.Setenv(ryukEnv, "true")
	cfg := testcontainers.ReadConfig()
	_ = os.Unsetenv(ryukEnv)
	if !cfg.Config.RyukDisabled {
		return reaperFix(fmt.Errorf("this process read testcontainers' configuration before the harness could turn the reaper off"))
	}
	return nil
}

// tcProperties is ~/.testcontainers.properties as testcontainers reads it
// (empty when there is none).
func tcProperties() *properties.Properties {
	home, err := os.UserHomeDir()
	if err != nil {
		return properties.NewProperties()
	}
	p, err := properties.LoadFile(filepath.Join(home, ".testcontainers.properties"), properties.UTF8)
	if err != nil {
		return properties.NewProperties()
	}
	return p
}

// reaperImageReady reports whether the reaper's image is present or can be
// pulled (bounded: where no registry answers the engine says so at once).
// With explain, the error carries the fix.
func reaperImageReady(ctx context.Context, explain bool) error {
	//lint:ignore SA1019 the only exported name of the image testcontainers runs its reaper from
	img := testcontainers.ReaperDefaultImage
	cli, err := client.New(client.FromEnv)
	if err != nil {
		return nil // no engine here: dockerClient says so with its own fix
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := cli.ImageInspect(ctx, img); err == nil {
		return nil
	}
	rc, err := cli.ImagePull(ctx, img, client.ImagePullOptions{})
	if err == nil {
		err = rc.Wait(ctx)
		_ = rc.Close()
	}
	if err == nil || !explain {
		return err
	}
	return reaperFix(fmt.Errorf("TESTCONTAINERS_RYUK_DISABLED=%s asks for testcontainers' reaper and its image %s cannot be pulled (%v)", os.Getenv(ryukEnv), img, err))
}

func reaperFix(err error) error {
	return fmt.Errorf("%w: meshtls removes what it creates itself, so set TESTCONTAINERS_RYUK_DISABLED=true (or call harness.NoReaper() in TestMain), or make the reaper's image available", err)
}
