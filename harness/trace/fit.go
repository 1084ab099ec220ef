package trace

import (
	"strings"
	"unicode/utf8"
)

// FitTable is Table within width columns (width <= 0: Table as is). Long
// EXPECTED and OBSERVED cells wrap onto continuation lines between their
// parts (result, [wire], peer=, reason=); when that is still too wide, the
// SCENARIO column is dropped. The full table stays one row per check.
func FitTable(results []Result, width int) (table string, fitted bool) {
	full := Table(results)
	if width <= 0 || maxLineWidth(full) <= width {
		return full, false
	}
	const gap = 2
	rows := [][]string{{"SCENARIO", "CHECK", "EXPECTED", "OBSERVED", "VERDICT"}}
	for i := range results {
		r := &results[i]
		exp := "-"
		if r.Expected != nil {
			exp = summary(string(r.Expected.Result), r.Expected.Wire, r.Expected.Peer, r.Expected.Reason)
		}
		rows = append(rows, []string{r.Scenario, r.Name, exp, summary(observedResult(r), r.Wire, normPeer(r.Peer), r.Reason), string(r.Verdict)})
	}
	w := make([]int, 5)
	for _, row := range rows {
		for i, c := range row {
			w[i] = max(w[i], utf8.RuneCountInString(c))
		}
	}
	cols := []int{0, 1, 2, 3, 4}
	fixed := w[0] + w[1] + w[4] + 4*gap
	const minCell = 16
	if width-fixed < 2*minCell {
		cols = []int{1, 2, 3, 4}
		fixed -= w[0] + gap
	}
	avail := max(width-fixed, 2*minCell)
	e := min(w[2], avail/2)
	o := min(w[3], avail-e)
	e = min(w[2], avail-o)
	w[2], w[3] = e, o

	var b strings.Builder
	for _, row := range rows {
		cells := make([][]string, 5)
		lines := 1
		for _, i := range cols {
			cells[i] = wrapParts(row[i], w[i])
			lines = max(lines, len(cells[i]))
		}
		for l := 0; l < lines; l++ {
			var line strings.Builder
			for k, i := range cols {
				s := ""
				if l < len(cells[i]) {
					s = cells[i][l]
				}
				line.WriteString(s)
				if k < len(cols)-1 {
					line.WriteString(strings.Repeat(" ", w[i]-utf8.RuneCountInString(s)+gap))
				}
			}
			b.WriteString(strings.TrimRight(line.String(), " ") + "\n")
		}
	}
	return b.String(), true
}

// wrapParts breaks s into lines of at most width runes between its
// space-separated parts (a [wire, list] is one part); a part longer than a
// line is cut.
func wrapParts(s string, width int) []string {
	if width <= 0 || utf8.RuneCountInString(s) <= width {
		return []string{s}
	}
	var parts []string
	depth, start := 0, 0
	for i, c := range s {
		switch {
		case c == '[':
			depth++
		case c == ']':
			depth--
		case c == ' ' && depth == 0:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	parts = append(parts, s[start:])
	var lines []string
	cur := ""
	for _, p := range parts {
		for utf8.RuneCountInString(p) > width {
			if cur != "" {
				lines, cur = append(lines, cur), ""
			}
			r := []rune(p)
			lines, p = append(lines, string(r[:width])), string(r[width:])
		}
		switch {
		case cur == "":
			cur = p
		case utf8.RuneCountInString(cur)+1+utf8.RuneCountInString(p) <= width:
			cur += " " + p
		default:
			lines, cur = append(lines, cur), p
		}
	}
	if cur != "" {
		lines = append(lines, cur)
	}
	return lines
}

func maxLineWidth(s string) int {
	n := 0
	for _, l := range strings.Split(s, "\n") {
		n = max(n, utf8.RuneCountInString(l))
	}
	return n
}
