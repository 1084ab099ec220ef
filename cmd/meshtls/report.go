package main

import (
	"bytes"
	"os"
	"time"

	"github.com/meshtls/meshtls/harness"
	"github.com/meshtls/meshtls/harness/trace"
)

// writeReport renders the HTML report in memory first, so a failed render
// never leaves half a page behind.
// With changes (meshtls diff, even none) the page starts with them.
func writeReport(path string, scs []harness.Scenario, results []*trace.Result, sum Summary, changes ...harness.ReportChange) error {
	var b bytes.Buffer
	d := time.Duration(sum.DurationMS) * time.Millisecond
	info := harness.ReportInfo{Title: "meshtls run", Started: time.Now().Add(-d), Duration: d}
	if changes != nil {
		info.Title, info.Changes = "meshtls diff", changes
	}
	if err := harness.WriteReport(&b, scs, results, info); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}
