package harness

import (
	"fmt"
	"html/template"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/meshtls/meshtls/harness/trace"
	"github.com/meshtls/meshtls/outcome"
)

// ReportInfo is what a report says about the run as a whole.
type ReportInfo struct {
	Title    string        // default "meshtls run"
	Started  time.Time     // zero: not shown
	Duration time.Duration // zero: not shown
	// Changes, when not nil, are the calls a config change altered
	// (meshtls diff); the page lists them first.
	Changes []ReportChange
}

// ReportChange is one call whose outcome differs between two configs.
type ReportChange struct {
	Call, Before, After string
	Broke               bool
}

// WriteReport renders one self-contained HTML page (inline CSS, no script,
// no external asset) for a run: per scenario a matrix of source workload ×
// destination coloured by outcome, then every check's trace. results are in
// RunScenarios order: each scenario's checks, scenario after scenario.
// Everything from a bundle or the wire is escaped by html/template.
func WriteReport(w io.Writer, scs []Scenario, results []*trace.Result, info ReportInfo) error {
	page, err := buildReport(scs, results, info)
	if err != nil {
		return err
	}
	return reportTmpl.Execute(w, page)
}

type reportPage struct {
	Title                           string
	Changes                         []ReportChange
	Diff                            bool
	Started, Duration               string
	Total, Passed, Failed, Reported int
	Scenarios                       []reportScenario
	FailedChecks                    []reportCheck // the index at the top
}

type reportScenario struct {
	Name, File string
	YAML       string // the bundle file as given (or why it could not be read)
	Anchor     string
	Passed     int
	Failed     int
	Reported   int
	Rows       []string // source workloads
	Cols       []string // destinations
	Cells      [][][]reportCell
	Checks     []reportCheck
}

type reportCell struct {
	Name, Anchor, Class, Result string
	Verdict                     outcome.Verdict
	Wire                        string
	MTLS, Explored              bool
}

type reportCheck struct {
	*trace.Result
	Anchor, Class, Dest, Observed, Expected string
	MTLS                                    bool
}

func buildReport(scs []Scenario, results []*trace.Result, info ReportInfo) (*reportPage, error) {
	p := &reportPage{Title: info.Title, Changes: info.Changes, Diff: info.Changes != nil}
	if p.Title == "" {
		p.Title = "meshtls run"
	}
	if !info.Started.IsZero() {
		p.Started = info.Started.Format(time.RFC3339)
	}
	if info.Duration > 0 {
		p.Duration = info.Duration.Round(100 * time.Millisecond).String()
	}
	next := 0
	for si, s := range scs {
		n := len(s.Mesh.Checks)
		if next+n > len(results) {
			return nil, fmt.Errorf("report: %d results for scenarios that declare more checks (scenario %s)", len(results), s.Name)
		}
		rs := reportScenario{Name: s.Name, File: s.File, Anchor: fmt.Sprintf("s%d", si), YAML: bundleText(s.File)}
		rowIdx, colIdx := map[string]int{}, map[string]int{}
		type placed struct{ row, col int }
		var at []placed
		for ci, r := range results[next : next+n] {
			chk := reportCheck{
				Result:   r,
				Anchor:   fmt.Sprintf("s%d-c%d", si, ci),
				Class:    outcomeClass(r),
				Dest:     destination(r),
				Observed: observedText(r),
				MTLS:     hasMTLS(r.Wire),
			}
			if r.Expected != nil {
				chk.Expected = expectedText(r.Expected)
			}
			rs.Checks = append(rs.Checks, chk)
			if r.Verdict == outcome.Fail {
				p.FailedChecks = append(p.FailedChecks, chk)
			}
			switch r.Verdict {
			case outcome.Pass:
				rs.Passed++
			case outcome.Fail:
				rs.Failed++
			default:
				rs.Reported++
			}
			if _, ok := rowIdx[r.From]; !ok {
				rowIdx[r.From] = len(rs.Rows)
				rs.Rows = append(rs.Rows, r.From)
			}
			if _, ok := colIdx[chk.Dest]; !ok {
				colIdx[chk.Dest] = len(rs.Cols)
				rs.Cols = append(rs.Cols, chk.Dest)
			}
			at = append(at, placed{rowIdx[r.From], colIdx[chk.Dest]})
		}
		rs.Cells = make([][][]reportCell, len(rs.Rows))
		for i := range rs.Cells {
			rs.Cells[i] = make([][]reportCell, len(rs.Cols))
		}
		for i, c := range rs.Checks {
			pl := at[i]
			rs.Cells[pl.row][pl.col] = append(rs.Cells[pl.row][pl.col], reportCell{
				Name: c.Name, Anchor: c.Anchor, Class: c.Class, Result: resultText(c.Result),
				Verdict: c.Verdict, MTLS: c.MTLS, Explored: c.Explored, Wire: "[" + outcome.Join(c.Wire, ", ") + "]",
			})
		}
		p.Passed += rs.Passed
		p.Failed += rs.Failed
		p.Reported += rs.Reported
		p.Total += n
		p.Scenarios = append(p.Scenarios, rs)
		next += n
	}
	if next != len(results) {
		return nil, fmt.Errorf("report: %d results for %d declared checks", len(results), next)
	}
	return p, nil
}

// bundleText is a scenario's YAML for the report, which should explain a
// run without the files it came from.
func bundleText(file string) string {
	b, err := os.ReadFile(file)
	if err != nil {
		return fmt.Sprintf("(could not read %s: %v)", file, err)
	}
	return string(b)
}

// plural is "1 check", "2 checks".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// destination is a matrix column: the URL's host:port, and the gateway
// dialled instead when the check goes via one.
func destination(r *trace.Result) string {
	if r.Dest != "" {
		return r.Dest
	}
	d := r.To
	if u, err := url.Parse(r.To); err == nil && u.Host != "" {
		d = u.Host
		if u.Port() == "" {
			d += ":" + map[string]string{"http": "80", "https": "443", "tls": "443"}[u.Scheme]
			d = strings.TrimSuffix(d, ":")
		}
		d = u.Scheme + "://" + d
	}
	if r.Via != "" {
		d += " via " + r.Via
	}
	return d
}

// outcomeClass picks a cell's colour: the verdict first, then whether the
// call got through (a check that expects a block and sees one passes, but
// reads differently from a working call).
func outcomeClass(r *trace.Result) string {
	ok := r.Result == outcome.OK
	switch r.Verdict {
	case outcome.Fail:
		return "fail"
	case outcome.Pass:
		if ok {
			return "pass-ok"
		}
		return "pass-blocked"
	default:
		if ok {
			return "report-ok"
		}
		return "report-blocked"
	}
}

func resultText(r *trace.Result) string {
	if r.Result == outcome.OK && r.Status != 0 && r.Status != 200 {
		return string(outcome.HTTP(r.Status))
	}
	return string(r.Result)
}

func hasMTLS(wire []outcome.Wire) bool {
	for _, w := range wire {
		if w.Has(outcome.MTLS) {
			return true
		}
	}
	return false
}

func observedText(r *trace.Result) string {
	parts := []string{resultText(r), "[" + outcome.Join(r.Wire, ", ") + "]"}
	if r.Peer != "" && r.Peer != outcome.PeerNone {
		parts = append(parts, "peer="+r.Peer)
	}
	return strings.Join(parts, " ")
}

func expectedText(e *trace.Expected) string {
	var parts []string
	if e.Result != "" {
		parts = append(parts, string(e.Result))
	}
	if len(e.Wire) > 0 {
		parts = append(parts, "["+outcome.Join(e.Wire, ", ")+"]")
	}
	if e.Peer != "" {
		parts = append(parts, "peer="+e.Peer)
	}
	if e.Reason != "" {
		parts = append(parts, fmt.Sprintf("reason contains %q", e.Reason))
	}
	return strings.Join(parts, " ")
}

var reportTmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"layer":  trace.Layer.String,
	"join":   strings.Join,
	"inc":    func(i int) int { return i + 1 },
	"plural": plural,
}).Parse(reportSrc))
