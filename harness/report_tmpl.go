package harness

// reportSrc is the report page. It loads nothing from elsewhere (the file
// must open on any machine, offline): CSS is inline, there is no script.
const reportSrc = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5em 2em;color:#1d2329;background:#fff}
h1{font-size:1.5em;margin:0 0 .2em}h2{font-size:1.2em;margin:2em 0 .4em;border-bottom:1px solid #ccd;padding-bottom:.2em}
h3{font-size:1em;margin:1.2em 0 .3em}
.meta{color:#556}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.92em}
table{border-collapse:collapse;margin:.4em 0}
th,td{border:1px solid #ccd;padding:.3em .5em;vertical-align:top;text-align:left}
th{background:#f1f3f6;font-weight:600}
table.matrix td{min-width:7em}
.cell{display:block;margin:.15em 0;padding:.2em .4em;border-radius:3px;text-decoration:none;color:inherit}
.pass-ok{background:#c9efcf}.pass-blocked{background:#e4f3c0}.fail{background:#f7c1c1;font-weight:600}
.report-ok{background:#dfe8f5}.report-blocked{background:#ebe3f3}
.legend span{display:inline-block;padding:.1em .5em;margin-right:.4em;border-radius:3px}
.lock{font-size:.8em;border:1px solid #3a7;border-radius:3px;padding:0 .25em;margin-left:.3em;color:#174}
.verdict{text-transform:uppercase;font-weight:600}
details{border:1px solid #dde;border-radius:4px;margin:.4em 0;padding:.3em .6em}
details>summary{cursor:pointer}
ul.mismatch{margin:.3em 0;color:#900}
.small{font-size:.9em;color:#445}
</style>
</head>
<body>
<h1>{{.Title}}</h1>
<p class="meta">{{plural .Total "check"}} in {{plural (len .Scenarios) "scenario"}}: {{.Passed}} passed, {{.Failed}} failed, {{.Reported}} reported{{if .Started}} · started {{.Started}}{{end}}{{if .Duration}} · took {{.Duration}}{{end}}</p>
{{if .FailedChecks}}<h2 id="failed">{{plural (len .FailedChecks) "failed check"}}</h2>
<ol class="failed">{{range .FailedChecks}}<li><a href="#{{.Anchor}}"><b>{{.Scenario}}/{{.Name}}</b></a> <span class="mono">{{.From}} → {{.To}}{{if .Via}} via {{.Via}}{{end}}</span>: expected <span class="mono">{{.Expected}}</span>, observed <span class="mono">{{.Observed}}</span></li>{{end}}</ol>{{end}}
<p class="legend small"><span class="pass-ok">pass, call went through</span><span class="pass-blocked">pass, call blocked as expected</span><span class="fail">fail</span><span class="report-ok">no expectation, went through</span><span class="report-blocked">no expectation, blocked</span><span class="lock">mTLS</span> a hop carried mutual TLS</p>
{{if .Diff}}<h2>changes</h2>
{{if .Changes}}<table class="changes">
<tr><th>call</th><th>before</th><th>after</th><th></th></tr>
{{range .Changes}}<tr><td class="mono">{{.Call}}</td><td class="mono">{{.Before}}</td><td class="mono">{{.After}}</td><td>{{if .Broke}}<span class="cell fail">broke</span>{{end}}</td></tr>
{{end}}</table>{{else}}<p>no call changed</p>{{end}}
{{end}}
{{range $s := .Scenarios}}
<h2 id="{{.Anchor}}">{{.Name}}</h2>
<p class="meta"><span class="mono">{{.File}}</span> · {{.Passed}} passed, {{.Failed}} failed, {{.Reported}} reported</p>
<details class="bundle"><summary>bundle <span class="mono">{{.File}}</span></summary><pre class="mono">{{.YAML}}</pre></details>
<table class="matrix">
<thead><tr><th>from \ to</th>{{range .Cols}}<th class="mono">{{.}}</th>{{end}}</tr></thead>
<tbody>
{{range $i, $row := .Rows}}<tr><th class="mono">{{$row}}</th>{{range index $s.Cells $i}}<td>{{range .}}<a class="cell {{.Class}}" href="#{{.Anchor}}" title="{{.Verdict}}">{{if not .Explored}}{{.Name}}: {{end}}{{.Result}} <span class="small">{{.Wire}}</span>{{if .MTLS}}<span class="lock">mTLS</span>{{end}}</a>{{end}}</td>{{end}}</tr>
{{end}}</tbody>
</table>
{{range .Checks}}
<details id="{{.Anchor}}"{{if eq .Verdict "fail"}} open{{end}}>
<summary><span class="cell {{.Class}}" style="display:inline"><span class="verdict">{{.Verdict}}</span></span> <b>{{.Name}}</b> <span class="mono">{{.From}} → {{.To}}{{if .Via}} via {{.Via}}{{end}}</span></summary>
<table>
<tr><th></th><th>expected</th><th>observed</th></tr>
<tr><th>outcome</th><td class="mono">{{if .Expected}}{{.Expected}}{{else}}-{{end}}</td><td class="mono">{{.Observed}}</td></tr>
<tr><th>reason</th><td></td><td class="mono">{{if .Reason}}{{.Reason}}{{else}}(none){{end}}</td></tr>
{{if .Status}}<tr><th>HTTP status</th><td></td><td class="mono">{{.Status}}</td></tr>{{end}}
{{if .Error}}<tr><th>client error</th><td></td><td class="mono">{{.Error}}</td></tr>{{end}}
</table>
{{if .Mismatches}}<ul class="mismatch">{{range .Mismatches}}<li><pre class="mono">{{.}}</pre></li>{{end}}</ul>{{end}}
{{if .Artifacts}}<p class="small">evidence saved in <span class="mono">{{.Artifacts}}</span></p>{{end}}
<h3>hops</h3>
<table>
<tr><th>#</th><th>from</th><th>to</th><th>wire</th><th>layers</th><th>flags / reason</th><th>decided by</th><th>evidence</th></tr>
{{range $i, $h := .Hops}}<tr><td>{{inc $i}}</td><td class="mono">{{$h.From}}{{if $h.Src}}<br><span class="small">{{$h.Src}}</span>{{end}}</td><td class="mono">{{$h.To}}<br><span class="small">{{$h.Dst}}</span></td><td class="mono">{{$h.Wire}}</td>
<td>{{range $j, $l := $h.Layers}}<div>{{inc $j}}. {{layer $l}}</div>{{else}}no bytes crossed{{end}}</td>
<td class="mono">{{$h.Flags}}{{if $h.FailureReason}}<br>{{$h.FailureReason}}{{end}}{{range $h.Notes}}<br><i>{{.}}</i>{{end}}</td>
<td class="small">{{range $h.Decided.Lines}}<div>{{.}}</div>{{end}}</td>
<td class="small">{{join $h.Sources ", "}}</td></tr>
{{end}}</table>
{{if .Body}}<p class="small">body: <span class="mono">{{.Body}}</span></p>{{end}}
</details>
{{end}}
{{end}}
</body>
</html>
`
