package console

// statusPages are the coordinator's pages: rounds, trustees, releases, devices. Each says where
// its status came from; a state directory holds less than a running coordinator, and the pages
// say what is unknown rather than show zeroes.
const statusPages = `
{{define "source"}}{{if .Err}}<p class="bad">The coordinator's status could not be read: {{.Err}}</p>
{{else}}<p>Status of model {{.St.Model}} from {{.Source}}, read at {{time .Now}}.{{if .Partial}}
A state directory holds the registry and the open round only: what a running coordinator knows (last seen,
the last round's outcome, trustees' health, regions' publishing) needs the Admin API (--operator).{{end}}</p>{{end}}{{end}}

{{define "rounds"}}{{template "head"}}
<h1>Rounds</h1>
{{template "source" .}}
{{with .St}}
<p>Last round started: {{.LastRoundStarted}}{{if not $.Partial}}; {{.CompletedRounds}} completed since the coordinator started; global model v{{.GlobalVersion}}{{end}}.
{{if .Paused}}<span class="bad">Rounds are paused.</span>{{end}}</p>
<h2>Open round</h2>
{{with .OpenRound}}<table><tr><th>round</th><th>base version</th><th>started</th><th>deadline</th><th>sampled</th><th>answered</th><th>missing</th><th>state</th></tr>
<tr><td>{{.Round}}</td><td>v{{.BaseVersion}}</td><td>{{pbtime .Started}}</td><td>{{pbtime .Deadline}}</td><td>{{.Selected}}</td><td>{{.Submitted}}</td>
<td>{{range .Missing}}{{.}} {{end}}</td><td>{{if .Closing}}closing{{else}}collecting{{end}}</td></tr></table>
{{else}}<p>No round is open.</p>{{end}}
<h2>Last round</h2>
{{with .LastRound}}<table><tr><th>round</th><th>outcome</th><th>why</th><th>sampled</th><th>participants</th><th>released</th><th>ended</th><th>took</th></tr>
<tr{{if ne .Outcome "completed"}} class="deny"{{end}}><td>{{.Round}}</td><td>{{.Outcome}}</td><td>{{.Reason}}</td><td>{{.Selected}}</td><td>{{.Participants}}</td>
<td>{{if .Version}}v{{.Version}}{{end}}</td><td>{{pbtime .Ended}}</td><td>{{seconds .DurationSeconds}}</td></tr></table>
{{else}}{{if $.Partial}}<p>Unknown: a state directory does not keep it.</p>{{else}}<p>No round has ended since the coordinator started.</p>{{end}}{{end}}
{{end}}
<h2>Rounds charged to the privacy ledgers</h2>
{{range .Ledgers}}{{if .Err}}<p class="bad">{{.Path}}: {{.Err}}</p>{{else}}
<table><tr><th>round</th><th>subject</th><th>participants</th><th>m_min</th><th>mechanism</th><th>epsilon this round</th><th>time</th></tr>
{{$s := .Subject}}{{range .Rounds}}<tr{{if not .Private}} class="deny"{{end}}><td>{{.Round}}</td><td>{{$s}}</td><td>{{.Participants}}</td><td>{{.MinParticipants}}</td>
<td>{{.Mechanism}}</td><td>{{printf "%.4g" .ThisRound}}</td><td>{{.Time}}</td></tr>
{{end}}</table>{{end}}{{else}}<p>No ledger given (--ledger).</p>{{end}}
{{template "foot"}}{{end}}

{{define "trustees"}}{{template "head"}}
<h1>Trustees</h1>
{{template "source" .}}
{{with .St}}{{if .Trustees}}
<table><tr><th>trustee</th><th>health</th><th>last decrypted round</th><th>latency</th></tr>
{{range .Trustees}}<tr{{if or (not .Reachable) .Problem}} class="deny"{{end}}><td>{{.Id}}</td>
<td>{{if not .Reachable}}down: {{.Problem}}{{else if .Problem}}unfit: {{.Problem}}{{else}}up{{end}}</td><td>{{.LastRound}}</td><td>{{seconds .LatencySeconds}}</td></tr>
{{end}}</table>
{{else}}<p>No trustee health in this status: the coordinator reports it through the Admin API once it has checked them (a state directory does not keep it).</p>{{end}}{{end}}
{{template "foot"}}{{end}}

{{define "releases"}}{{template "head"}}
<h1>Releases per region</h1>
{{template "source" .}}
{{with .St}}{{if .Regions}}
<table><tr><th>region</th><th>published version</th><th>last published</th><th>failures in a row</th><th>last error</th></tr>
{{range .Regions}}<tr{{if .Failures}} class="deny"{{end}}><td>{{.Name}}</td><td>v{{.PublishedVersion}}</td><td>{{pbtime .LastSuccess}}</td><td>{{.Failures}}</td><td>{{.LastError}}</td></tr>
{{end}}</table>
{{else}}<p>No region in this status: the coordinator reports its publishing through the Admin API (a state directory does not keep it).</p>{{end}}{{end}}
<h2>What devices see</h2>
{{if or .Releases .ReleasesErr}}<p>Each region's root, pointer, manifest and key epoch, verified as a device verifies them, with their expiries:</p>
{{if .ReleasesErr}}<p class="bad">{{.ReleasesErr}}</p>{{else}}<p class="good">Everything verifies.</p>{{end}}
<pre>{{.Releases}}</pre>
{{else}}<p>No region given (--root and --region).</p>{{end}}
{{template "foot"}}{{end}}

{{define "devices"}}{{template "head"}}
<h1>Devices</h1>
{{template "source" .}}
{{with .St}}<p>{{len .Devices}} enrolled, {{len .Removed}} removed. The console shows the registry only: no behavioural data.</p>
<table><tr><th>device</th><th>region</th><th>enrolled</th><th>last seen</th></tr>
{{range .Devices}}<tr><td>{{.Id}}</td><td>{{.Region}}</td><td>{{pbtime .Enrolled}}</td><td>{{if .LastSeen}}{{pbtime .LastSeen}}{{else if $.Partial}}unknown (state directory){{else}}not since the coordinator started{{end}}</td></tr>
{{end}}</table>
{{if .Removed}}<h2>Removed (revoked)</h2><table><tr><th>device</th><th>removed</th><th>why</th></tr>
{{range .Removed}}<tr class="deny"><td>{{.Id}}</td><td>{{pbtime .Removed}}</td><td>{{.Reason}}</td></tr>{{end}}</table>{{end}}
{{end}}
{{template "foot"}}{{end}}
`
