package mesh

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

func isYAML(name string) bool {
	return strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")
}

// yamlFiles lists the *.yaml and *.yml files under dir, in every
// subdirectory (hidden ones, like .git, excepted), in path order: a
// folder of manifests (kubectl get -o yaml per object, a kustomize base)
// is one bundle.
func yamlFiles(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != dir && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		if !d.IsDir() && isYAML(d.Name()) {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("mesh: read bundle directory: %w", err)
	}
	slices.Sort(out)
	if len(out) == 0 {
		return nil, fmt.Errorf("mesh: directory %s has no *.yaml or *.yml files", dir)
	}
	return out, nil
}

// Bundles expands the arguments of `meshtls run` and `validate` into
// bundles, each one scenario: a file is a bundle; in a directory, each
// *.yaml or *.yml file directly inside is a bundle and each subdirectory
// with YAML in it is one bundle of all its files (recursively).
func Bundles(paths ...string) ([]string, error) {
	var out []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			out = append(out, p)
			continue
		}
		ents, err := os.ReadDir(p)
		if err != nil {
			return nil, err
		}
		var in []string
		for _, e := range ents {
			sub := filepath.Join(p, e.Name())
			switch {
			case strings.HasPrefix(e.Name(), "."):
			case e.IsDir():
				if files, err := yamlFiles(sub); err == nil && len(files) > 0 {
					in = append(in, sub)
				}
			case isYAML(e.Name()):
				in = append(in, sub)
			}
		}
		if len(in) == 0 {
			return nil, fmt.Errorf("%s: no *.yaml or *.yml files", p)
		}
		slices.Sort(in)
		out = append(out, in...)
	}
	return out, nil
}
