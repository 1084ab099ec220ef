package main

import (
	"encoding/json"
	"errors"
	"io"

	"github.com/meshtls/meshtls/mesh"
)

// errorOutput is what `-o json` prints on stdout when a command fails
// before it has results (bad input, set-up failure, interrupt): one object,
// so a CI step that parses stdout always gets JSON.
type errorOutput struct {
	Error errorBody `json:"error"`
}

type errorBody struct {
	Message  string    `json:"message"`
	ExitCode int       `json:"exitCode"`
	Problems []problem `json:"problems,omitempty"` // bundle validation, one per problem
}

// problem is one mesh.Problem: file, document (1-based), kind/name, field.
type problem struct {
	File     string `json:"file,omitempty"`
	Document int    `json:"document,omitempty"`
	Kind     string `json:"kind,omitempty"`
	Name     string `json:"name,omitempty"`
	Field    string `json:"field,omitempty"`
	Message  string `json:"message"`
}

// problemsOf collects the validation problems in err (joined errors too).
func problemsOf(err error) []problem {
	var out []problem
	var walk func(error)
	walk = func(e error) {
		var ve *mesh.ValidationError
		switch {
		case e == nil:
		case errors.As(e, &ve):
			for _, p := range ve.Problems {
				pr := problem{File: p.Source.File, Kind: p.Kind, Name: p.Name, Field: p.Field, Message: p.Message}
				if p.Source.File != "" {
					pr.Document = p.Source.Index + 1
				}
				out = append(out, pr)
			}
		default:
			if j, ok := e.(interface{ Unwrap() []error }); ok {
				for _, x := range j.Unwrap() {
					walk(x)
				}
			}
		}
	}
	walk(err)
	return out
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// validateOutput is `validate -o json`.
type validateOutput struct {
	Files   []validatedFile `json:"files"`
	Summary struct {
		Files   int `json:"files"`
		Invalid int `json:"invalid"`
	} `json:"summary"`
}

type validatedFile struct {
	File      string    `json:"file"`
	Valid     bool      `json:"valid"`
	Workloads int       `json:"workloads"`
	Checks    int       `json:"checks"`
	Problems  []problem `json:"problems,omitempty"`
	Error     string    `json:"error,omitempty"` // a failure that is not a bundle problem (unreadable file)
}
