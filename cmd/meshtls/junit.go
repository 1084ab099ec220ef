package main

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"os"
	"strings"

	"github.com/jstemmer/go-junit-report/v2/junit"

	"github.com/meshtls/meshtls/harness"
	"github.com/meshtls/meshtls/harness/trace"
	"github.com/meshtls/meshtls/outcome"
)

// junitReport is `--junit FILE`: one testsuite per scenario (bundle file),
// one testcase per check; a failed check's failure body is its trace, as
// the table mode prints it. Checks without an expectation pass, with what
// was observed as their output.
func junitReport(scs []harness.Scenario, results []*trace.Result, sum Summary) junit.Testsuites {
	byScenario := map[string][]*trace.Result{}
	for _, r := range results {
		byScenario[r.Scenario] = append(byScenario[r.Scenario], r)
	}
	out := junit.Testsuites{Name: "meshtls", Time: seconds(sum.DurationMS)}
	for i, s := range scs {
		ts := junit.Testsuite{Name: s.Name, ID: i, File: s.File}
		var ms int64
		for _, r := range byScenario[s.Name] {
			ms += r.DurationMS
			tc := junit.Testcase{Name: r.Name, Classname: s.Name, Time: seconds(r.DurationMS)}
			switch r.Verdict {
			case outcome.Fail:
				tc.Failure = &junit.Result{
					Message: strings.Join(r.Mismatches, "; "),
					Type:    "expectation",
					Data:    r.Explain(),
				}
			case outcome.Report:
				tc.SystemOut = &junit.Output{Data: r.Explain()}
			}
			ts.AddTestcase(tc)
		}
		ts.Time = seconds(ms)
		out.AddSuite(ts)
	}
	return out
}

// writeJUnit renders in memory first, so a failed render leaves no half file.
func writeJUnit(path string, scs []harness.Scenario, results []*trace.Result, sum Summary) error {
	var b bytes.Buffer
	b.WriteString(xml.Header)
	ts := junitReport(scs, results, sum)
	if err := ts.WriteXML(&b); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// seconds is JUnit's time attribute: seconds with millisecond precision.
func seconds(ms int64) string { return fmt.Sprintf("%.3f", float64(ms)/1000) }
