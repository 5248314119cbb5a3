package console

// pages are the console's templates: one layout, two pages. html/template escapes every value
// for its context, so names from the log (sessions, users, reasons) cannot become markup.
const pages = `
{{define "head"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.}} - Vigil console</title>
<link rel="stylesheet" href="/style.css"></head><body>
<header><nav aria-label="Pages">{{$page := .}}{{range pages}}<a href="{{.Path}}"{{if eq .Title $page}} aria-current="page"{{end}}>{{if eq .Title "Overview"}}Vigil console{{else}}{{.Title}}{{end}}</a>
{{end}}</nav></header><main>{{end}}
{{define "foot"}}</main></body></html>{{end}}

{{define "logstatus"}}
{{if .Err}}<p class="bad">The decision log {{.Path}} does not verify, so nothing in it is shown: {{.Err}}</p>
{{else}}<p class="good">{{.Path}} verifies: {{.Report.Records}} records, {{.Report.Decisions}} decisions,
{{.Report.SessionEvents}} changes of standing, {{.Report.Checkpoints}} signed checkpoints; head record {{.Report.Head.Seq}}
at {{time .Report.Head.Time}}; records after the last checkpoint, which nothing signs yet: {{.Report.Uncovered}}.</p>
{{if .Report.Dropped}}<p class="bad">{{.Report.Dropped}} entries were dropped before the log (gap records).</p>{{end}}
{{end}}{{end}}

{{define "overview"}}{{template "head" "Overview"}}
<h1>Decision log</h1>
{{template "logstatus" .Log}}
<h2>SIEM export</h2>
{{if not .SpoolDir}}<p>No spool given (--spool).</p>
{{else if .SpoolErr}}<p class="bad">{{.SpoolErr}}</p>
{{else}}<p>{{.SpoolDir}}: {{.Spool.Segments}} segments, {{.Spool.Bytes}} bytes.</p>
<table><tr><th>collector</th><th>acknowledged offset</th><th>not yet acknowledged (bytes)</th></tr>
{{range .Spool.Senders}}<tr><td>{{.}}</td><td>{{index $.Spool.Acked .}}</td><td>{{$.Spool.Pending .}}</td></tr>{{end}}
</table>{{end}}
{{template "foot"}}{{end}}

{{define "privacy"}}{{template "head" "Privacy"}}
<h1>Privacy ledgers</h1>
{{if .Report}}<p><a class="button" href="/privacy/report" download>Download the signed privacy report</a>
(a tar of the HTML report and its ML-DSA-65 signature; check it with vigil privacy verify-report)</p>{{end}}
{{if not .Ledgers}}<p>No ledger given (--ledger).</p>{{end}}
{{if .ComposedErr}}<p class="bad">Composition of the models' ledgers: {{.ComposedErr}}</p>
{{else if .Unbounded}}<p class="bad">Composed across the {{.Composable}} models' ledgers shown: unbounded, since differential privacy was off in some of their rounds.</p>
{{else if .Composable}}<p>Composed across the {{.Composable}} models' ledgers shown: epsilon {{printf "%.4g" .Composed}} at delta {{.ComposedDelta}}
(RDP adds across models trained on the same population, as vigil privacy report composes them; a device's own ledger is its own account and is left out).</p>{{end}}
{{template "tradeoff" .Tradeoff}}
{{range .Ledgers}}<h2>{{.Path}}</h2>
{{if .Err}}<p class="bad">{{.Err}}</p>{{else}}
{{if .Unprotected}}<p class="bad">Subject {{.Subject}}: privacy loss unbounded (budget epsilon {{.Budget.Epsilon}} at delta {{.Budget.Delta}}), in {{len .Rounds}} rounds.</p>
{{else}}<p>Subject {{.Subject}}: epsilon {{printf "%.4g" .Spent}} spent of {{.Budget.Epsilon}} at delta {{.Budget.Delta}}
({{printf "%.1f" .Percent}}%), {{printf "%.4g" .Remaining}} remaining, in {{len .Rounds}} rounds.</p>{{end}}
{{if .Unprotected}}<p class="bad">Rounds {{range $i, $r := .Unprotected}}{{if $i}}, {{end}}{{$r}}{{end}} were released without differential privacy: the subject's privacy loss is unbounded.</p>{{end}}
<table><tr><th>round</th><th>mechanism</th><th>q</th><th>z</th><th>steps</th><th>C</th><th>m_min</th><th>t_dev</th><th>participants</th><th>epsilon after</th><th>this round</th><th>model SHA-256</th><th>time</th></tr>
{{range .Rounds}}<tr{{if not .Private}} class="deny"{{end}}><td>{{.Round}}</td><td>{{.Mechanism}}</td><td>{{printf "%.4g" .SamplingRate}}</td>
<td>{{printf "%.4g" .NoiseMultiplier}}</td><td>{{.Steps}}</td><td>{{printf "%.4g" .ClipNorm}}</td><td>{{.MinParticipants}}</td>
<td>{{.ToleratedDevices}}</td><td>{{.Participants}}</td><td>{{printf "%.4g" .Epsilon}}</td><td>{{printf "%.4g" .ThisRound}}</td>
<td class="long"><code>{{.ModelSHA256}}</code></td><td>{{.Time}}</td></tr>
{{end}}</table>{{end}}{{end}}
{{template "foot"}}{{end}}

{{define "cell"}}<td>{{.Value}}{{if .CI}}<span class="ci">{{.CI}}</span>{{end}}</td>{{end}}
{{define "tradeoff"}}<h2 id="tradeoff">Accuracy against epsilon</h2>
{{if not .Path}}<p>No trade-off given (--tradeoff FILE, the output of vigil privacy tradeoff --json).</p>
{{else if .Err}}<p class="bad">The trade-off {{.Path}} cannot be shown: {{.Err}}</p>
{{else}}<p>What each total privacy budget costs in accuracy ({{.T.Eval}}, {{.T.Users}} users of {{.T.Data}}; {{.Path}}): the deployable
models evaluated at each epsilon. Lower EER is better{{if .HasAUC}}; higher AUC is better{{end}}. The grey lines are each ledger's epsilon spent now and its budget.
Each point's tooltip gives its value and 95% interval; the table holds the same numbers.</p>
<nav class="metrics" aria-label="what the plot shows">Plot:{{range .Choices}} <a href="/privacy?metric={{.Value}}#tradeoff"{{if .Current}} class="current" aria-current="true"{{end}}>{{.Label}}</a>{{end}}</nav>
<div class="tradeoff">
{{with .Plot}}{{$p := .}}<figure><svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {{.W}} {{.H}}" class="plot" role="img" aria-labelledby="tradeoff-title tradeoff-desc">
<title id="tradeoff-title">{{.Title}}</title><desc id="tradeoff-desc">{{.Desc}}</desc>
<rect x="{{.Left}}" y="{{.Top}}" width="{{.InnerW}}" height="{{.InnerH}}" fill="#fff" stroke="#bbb"/>
{{range .YTicks}}<line x1="{{$p.Left}}" x2="{{$p.Right}}" y1="{{.At}}" y2="{{.At}}" stroke="#e6e6e6"/><text x="{{$p.YTickX}}" y="{{.At}}" dy="4" text-anchor="end">{{.Label}}</text>
{{end}}{{range .XTicks}}<line x1="{{.At}}" x2="{{.At}}" y1="{{$p.Top}}" y2="{{$p.Bottom}}" stroke="#eee"/><text x="{{.At}}" y="{{$p.XTickY}}" text-anchor="middle">{{.Label}}</text>
{{end}}{{if .BreakPath}}<path d="{{.BreakPath}}" stroke="#333" stroke-width="1.5" fill="none"/>{{end}}
<text x="{{.CentreX}}" y="{{.XLabelY}}" text-anchor="middle" class="axis-label">{{.XLabel}}</text>
<text transform="rotate(-90)" x="-{{.MiddleY}}" y="16" text-anchor="middle" class="axis-label">{{.YLabel}}</text>
{{range .Markers}}<g class="marker"><title>{{.Title}}</title><line x1="{{.X}}" x2="{{.X}}" y1="{{$p.Top}}" y2="{{$p.Bottom}}" stroke="#444" stroke-width="1.5"{{if .Dashed}} stroke-dasharray="6 4"{{end}}/>
<text x="{{.LabelX}}" y="{{.LabelY}}" text-anchor="{{.LabelAnchor}}">{{.Label}}</text></g>
{{end}}{{range .Series}}{{$s := .}}<g class="series">
{{if .Alone}}<line x1="{{$p.Left}}" x2="{{$p.Right}}" y1="{{.Alone}}" y2="{{.Alone}}" stroke="{{.Colour}}" stroke-width="1.5" stroke-dasharray="2 4"><title>{{.AloneTitle}}</title></line>{{end}}
<path d="{{.Path}}" fill="none" stroke="{{.Colour}}" stroke-width="2"/>{{if .InfPath}}<path d="{{.InfPath}}" fill="none" stroke="{{.Colour}}" stroke-width="2" stroke-dasharray="5 4"/>{{end}}
{{range .Points}}<g class="point"><title>{{.Title}}</title>{{if .CI}}<path d="{{.CI}}" stroke="{{$s.Colour}}" stroke-width="1.5" fill="none"/>{{end}}<path d="{{.Mark}}" fill="{{$s.Colour}}" stroke="#fff"/><circle cx="{{.X}}" cy="{{.Y}}" r="10" fill="transparent"/></g>
{{end}}</g>
{{end}}{{range .Legend}}{{if .Dash}}<path d="{{.Line}}" stroke="{{.Colour}}" stroke-width="2" stroke-dasharray="{{.Dash}}"/>{{else}}<path d="{{.Line}}" stroke="{{.Colour}}" stroke-width="2"/>{{end}}{{if .Mark}}<path d="{{.Mark}}" fill="{{.Colour}}" stroke="#fff"/>{{end}}<text x="{{.LabelX}}" y="{{.Y}}">{{.Label}}</text>
{{end}}</svg></figure>{{end}}
<table class="tradeoff-table"><caption>The plotted values (bootstrap 95% intervals over users{{if .HasAUC}}; AUC over sessions{{end}})</caption>
<tr><th>epsilon</th><th>mean per-user EER</th><th>pooled EER</th>{{if .HasAUC}}<th>mouse AUC</th>{{end}}</tr>
{{range $i, $r := .T.Rows}}<tr{{if index $.Current $i}} class="current"{{end}}><td>{{.Epsilon}}{{if .Epsilon.Inf}}<span class="ci">no noise</span>{{end}}{{if index $.Current $i}}<span class="ci">a ledger's budget</span>{{end}}</td>{{template "cell" .EERMeanCell}}{{template "cell" .EERPooledCell}}{{if $.HasAUC}}{{template "cell" .AUCCell}}{{end}}</tr>
{{end}}{{with .T.Alone}}<tr><td>each device alone</td>{{template "cell" .EERMeanCell}}{{template "cell" .EERPooledCell}}{{if $.HasAUC}}{{template "cell" .AUCCell}}{{end}}</tr>{{end}}
</table></div>{{end}}{{end}}

{{define "decisions"}}{{template "head" "Decisions"}}
<h1>Decisions and changes of standing</h1>
<form method="get" action="/decisions">
<label>session <input name="session" value="{{.Filter.Session}}"></label>
<label>user <input name="user" value="{{.Filter.User}}"></label>
<label>outcome or event <input name="outcome" value="{{.Filter.Outcome}}"></label>
<button type="submit">Filter</button></form>
{{template "logstatus" .Log}}
{{if not .Log.Err}}<p>The newest {{len .Log.Records}} matching entries (at most {{.Rows}}), newest first.</p>
<table><tr><th>record</th><th>time</th><th>session</th><th>user</th><th>what</th><th>outcome</th><th>tier</th><th>trust</th><th>reasons</th></tr>
{{range .Log.Records}}{{if .Decision}}{{with .Decision}}<tr class="{{if .Allow}}allow{{else}}deny{{end}}">{{end}}
<td>{{.Seq}}</td><td>{{time .Decision.At}}</td><td class="long">{{.Decision.Session}}</td><td class="long">{{.Decision.User}}</td>
<td class="long">{{.Decision.Resource}}</td><td>{{.Decision.Outcome}}</td><td>{{.Decision.Tier}}</td>
<td>{{printf "%.0f" .Decision.Trust}}{{if .Decision.Required}} of {{printf "%.0f" .Decision.Required}}{{end}}</td>
<td class="long">{{range .Decision.Reasons}}{{.Text}} ({{printf "%+.0f" .Impact}})<br>{{end}}</td></tr>
{{else if .Session}}<tr><td>{{.Seq}}</td><td>{{time .Session.At}}</td><td class="long">{{.Session.Session}}</td><td class="long">{{.Session.User}}</td>
<td>change of standing</td><td>{{.Session.Event}}</td><td>{{.Session.From}} to {{.Session.To}}</td>
<td>{{printf "%.0f" .Session.Trust}}</td><td class="long">{{range .Session.Reasons}}{{.Text}} ({{printf "%+.0f" .Impact}})<br>{{end}}</td></tr>
{{else if .Gap}}<tr class="gap"><td>{{.Seq}}</td><td>{{time .Time}}</td><td colspan="7">{{.Gap.Dropped}} entries were dropped before the log</td></tr>
{{end}}{{end}}
</table>{{end}}
{{template "foot"}}{{end}}
`

// style is the console's only stylesheet, served from /style.css.
const style = `body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#111}
header{background:#1d2b3a;padding:.6em 1em}header nav{display:flex;flex-wrap:wrap;gap:.3em 1.5em}header a{color:#fff;text-decoration:none}
header a[aria-current]{text-decoration:underline;text-underline-offset:.3em}
main{padding:1em}h1{font-size:1.4em}h2{font-size:1.15em}table{border-collapse:collapse;width:100%}
th,td{border-bottom:1px solid #ddd;padding:.3em .5em;text-align:left;vertical-align:top}
td.long{overflow-wrap:anywhere;min-width:6em}
tr.deny{background:#fdecea}tr.gap{background:#fff4d6}.bad{color:#a40000;font-weight:600}.good{color:#145a14}
form label{margin-right:1em}code{overflow-wrap:anywhere}
a.button{display:inline-block;background:#1d2b3a;color:#fff;padding:.4em .9em;border-radius:4px;text-decoration:none}
.tradeoff{display:grid;grid-template-columns:minmax(0,5fr) minmax(0,4fr);gap:1.5em;align-items:start}.tradeoff figure{margin:0;max-width:800px}
@media (max-width:1000px){.tradeoff{grid-template-columns:minmax(0,1fr)}}.tradeoff svg{width:100%;height:auto}caption{text-align:left;color:#555;padding-bottom:.3em}
.tradeoff .ci{display:block;color:#555;font-size:.85em;white-space:nowrap}
.plot text{font:13px system-ui,sans-serif;fill:#222}.plot .axis-label{font-size:14px}.plot g.point:hover path{stroke:#000}
nav.metrics{margin:.5em 0 1em}nav.metrics a{margin-left:.6em;padding:.15em .5em;border:1px solid #bbb;border-radius:3px;color:#1d2b3a;text-decoration:none}
nav.metrics a.current{background:#1d2b3a;color:#fff;border-color:#1d2b3a}tr.current{background:#eef4fb;font-weight:600}`
