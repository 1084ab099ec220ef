package docker

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The CI image cannot be built here (its base images come from a registry),
// so this checks what can be checked without one: every instruction is a
// Dockerfile instruction, stages referenced by COPY --from exist, COPY
// sources exist in the build context (the repository root), exec-form
// ENTRYPOINT/CMD are JSON arrays, and the meshtls in it is static.

var instructions = map[string]bool{"FROM": true, "RUN": true, "COPY": true, "ADD": true, "ENV": true, "WORKDIR": true,
	"ENTRYPOINT": true, "CMD": true, "USER": true, "ARG": true, "LABEL": true, "EXPOSE": true, "VOLUME": true}

// dockerfileLines joins continuation lines and drops comments and blanks.
func dockerfileLines(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	var cur strings.Builder
	for _, l := range strings.Split(string(data), "\n") {
		l = strings.TrimSpace(l)
		if cur.Len() == 0 && (l == "" || strings.HasPrefix(l, "#")) {
			continue
		}
		if cont, ok := strings.CutSuffix(l, "\\"); ok {
			cur.WriteString(cont + " ")
			continue
		}
		cur.WriteString(l)
		out = append(out, cur.String())
		cur.Reset()
	}
	if cur.Len() > 0 {
		t.Fatalf("%s ends inside a continued line", path)
	}
	return out
}

func TestCIDockerfile(t *testing.T) {
	const path = "ci/Dockerfile"
	stages := map[string]bool{}
	var sawStatic, sawSetup bool
	var final []string
	for _, l := range dockerfileLines(t, path) {
		ins, rest, _ := strings.Cut(l, " ")
		if !instructions[ins] {
			t.Errorf("%s: unknown instruction %q", path, ins)
		}
		switch ins {
		case "FROM":
			f := strings.Fields(rest)
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				stages[f[2]] = true
			}
			final = nil
		case "COPY":
			f := strings.Fields(rest)
			if from, ok := strings.CutPrefix(f[0], "--from="); ok {
				if !stages[from] {
					t.Errorf("%s: COPY --from=%s: no such stage", path, from)
				}
				break
			}
			for _, src := range f[:len(f)-1] {
				if _, err := os.Stat(filepath.Join("..", src)); err != nil {
					t.Errorf("%s: COPY %s: not in the build context: %v", path, src, err)
				}
			}
		case "RUN":
			sawStatic = sawStatic || strings.Contains(rest, "CGO_ENABLED=0 go build") && strings.Contains(rest, "./cmd/meshtls")
			sawSetup = sawSetup || strings.Contains(rest, "meshtls setup")
		case "ENTRYPOINT", "CMD":
			var v []string
			if err := json.Unmarshal([]byte(rest), &v); err != nil {
				t.Errorf("%s: %s %s: not a JSON array: %v", path, ins, rest, err)
			}
		}
		final = append(final, l)
	}
	if _, err := os.Stat(filepath.Join("..", "cmd", "meshtls", "main.go")); err != nil {
		t.Errorf("the Dockerfile builds ./cmd/meshtls: %v", err)
	}
	if !sawStatic || !sawSetup {
		t.Errorf("%s: want a static (CGO_ENABLED=0) build of ./cmd/meshtls and `meshtls setup` (static %v, setup %v)", path, sawStatic, sawSetup)
	}
	if !strings.Contains(strings.Join(final, "\n"), `ENTRYPOINT ["meshtls"]`) {
		t.Errorf("%s: the final stage should run meshtls", path)
	}
}

// The images the harness builds parse the same way.
func TestHarnessDockerfiles(t *testing.T) {
	for _, p := range []string{"pod/Dockerfile", "envoy/Dockerfile"} {
		for _, l := range dockerfileLines(t, p) {
			if ins, _, _ := strings.Cut(l, " "); !instructions[ins] {
				t.Errorf("%s: unknown instruction %q", p, ins)
			}
		}
	}
}
