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
func writeReport(path string, scs []harness.Scenario, results []*trace.Result, sum Summary) error {
	var b bytes.Buffer
	d := time.Duration(sum.DurationMS) * time.Millisecond
	if err := harness.WriteReport(&b, scs, results, harness.ReportInfo{Title: "meshtls run", Started: time.Now().Add(-d), Duration: d}); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}
