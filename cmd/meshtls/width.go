package main

import (
	"io"
	"os"
	"strconv"

	"golang.org/x/term"
)

// tableWidth is how wide the final table may be: COLUMNS when set, else the
// terminal's width, else no limit (a file or a CI log keeps full rows).
func tableWidth(w io.Writer) int {
	if n, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && n > 0 {
		return n
	}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		if n, _, err := term.GetSize(int(f.Fd())); err == nil {
			return n
		}
	}
	return 0
}
