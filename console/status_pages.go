package console

// statusPages are the coordinator's pages: rounds, trustees, releases, devices. Each says where
// its status came from; a state directory holds less than a running coordinator, and the pages
// say what is unknown rather than show zeroes.
const statusPages = `
{{define "source"}}{{if .Err}}<p class="bad">The coordinator's status could not be read: {{.Err}}</p>
{{else}}<p>Status of model {{.St.Model}} from {{.Source}}, read at {{time .Now}}.{{if .Partial}}
A state directory holds the registry and the open round only: what a running coordinator knows (last seen,
the last round's outcome, trustees' health, regions' publishing) needs the Admin API (--operator).{{end}}</p>{{end}}{{end}}

{{define "rounds"}}{{template "head" "Rounds"}}
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
{{with .Recent}}{{if .Rows}}<h2>Time per stage</h2>
<p>The rounds that ended since the coordinator started, newest first, with how long each stage took.</p>
<table><tr><th>round</th><th>outcome</th><th>participants</th><th>ended</th><th>took</th>{{range .Stages}}<th>{{.}}</th>{{end}}</tr>
{{range .Rows}}<tr{{if ne .Outcome "completed"}} class="deny"{{end}}><td>{{.Round}}</td><td>{{.Outcome}}</td><td>{{.Participants}} of {{.Selected}}</td>
<td>{{pbtime .Ended}}</td><td>{{seconds .DurationSeconds}}</td>{{range .Took}}<td>{{if .}}{{.}}{{else}}-{{end}}</td>{{end}}</tr>
{{end}}</table>{{end}}{{end}}
<h2>Rounds charged to the privacy ledgers</h2>
{{range .Ledgers}}{{if .Err}}<p class="bad">{{.Path}}: {{.Err}}</p>{{else}}
<table><tr><th>round</th><th>subject</th><th>participants</th><th>m_min</th><th>mechanism</th><th>epsilon this round</th><th>time</th></tr>
{{$s := .Subject}}{{range .Rounds}}<tr{{if not .Private}} class="deny"{{end}}><td>{{.Round}}</td><td>{{$s}}</td><td>{{.Participants}}</td><td>{{.MinParticipants}}</td>
<td>{{.Mechanism}}</td><td>{{printf "%.4g" .ThisRound}}</td><td>{{.Time}}</td></tr>
{{end}}</table>{{end}}{{else}}<p>No ledger given (--ledger).</p>{{end}}
{{template "foot"}}{{end}}

{{define "trustees"}}{{template "head" "Trustees"}}
<h1>Trustees</h1>
{{template "source" .}}
{{with .St}}{{if .Trustees}}
<table><tr><th>trustee</th><th>health</th><th>last decrypted round</th><th>latency</th></tr>
{{range .Trustees}}<tr{{if or (not .Reachable) .Problem}} class="deny"{{end}}><td>{{.Id}}</td>
<td>{{if not .Reachable}}down: {{.Problem}}{{else if .Problem}}unfit: {{.Problem}}{{else}}up{{end}}</td><td>{{.LastRound}}</td><td>{{seconds .LatencySeconds}}</td></tr>
{{end}}</table>
{{else}}<p>No trustee health in this status: the coordinator reports it through the Admin API once it has checked them (a state directory does not keep it).</p>{{end}}{{end}}
<p>The key epoch whose shares the trustees hold, and which of them signed it: <a href="/keyepochs">Key epochs</a>.</p>
{{template "foot"}}{{end}}

{{define "keyepochs"}}{{template "head" "Key epochs"}}
<h1>Key epochs</h1>
<p>Devices encrypt their updates only under a collective key whose key-epoch document a threshold of the trustees signed,
each with its own key in the root of trust's trustees role, after its own test decryption. Each signature is checked here
on its own against that role.</p>
{{if .RootErr}}<p class="bad">{{.RootErr}}</p>{{else}}<p>Root of trust version {{.RootVersion}}: its trustees role has {{.RoleKeys}} keys, {{.RoleThreshold}} of which must sign.</p>{{end}}
{{if .Err}}<p class="bad">Trustees' health unknown: the coordinator's status could not be read: {{.Err}}</p>{{end}}
{{if not .Epochs}}<p>No key-epoch document given (--key-epoch).</p>{{end}}
{{range .Epochs}}<h2>{{if .Doc}}Key epoch {{.Doc.Epoch}}{{else}}{{.Path}}{{end}}</h2>
{{if .Err}}<p class="bad">{{.Path}}: {{.Err}}</p>{{else}}
{{if .Verified}}<p class="good">Verifies: {{.Valid}} valid signatures by trustees keys; the trustees role needs {{.Threshold}}.</p>
{{else if .VerifyErr}}<p class="bad">Does not verify: {{.VerifyErr}}</p>{{end}}
{{if .Expired}}<p class="bad">Expired at {{time .Doc.Expires}}: devices refuse to encrypt under it.</p>{{end}}
<table><tr><th>document</th><td>{{.Path}}</td></tr>
<tr><th>epoch</th><td>{{.Doc.Epoch}}</td></tr>
<tr><th>HE parameters</th><td>{{.Doc.Params}}</td></tr>
<tr><th>created</th><td>{{time .Doc.Created}}</td></tr>
<tr><th>expires</th><td>{{time .Doc.Expires}}</td></tr>
<tr><th>collective public key</th><td>{{.Doc.PublicKeySize}} bytes, SHA-256 {{.Doc.PublicKeySHA256}}</td></tr></table>
{{if .Rows}}<h3>Signatures</h3>
<table><tr><th>trustee</th><th>key</th><th>signature</th><th>now (coordinator's last check)</th></tr>
{{range .Rows}}<tr{{if or .Bad .Down}} class="deny"{{end}}><td>{{if .Name}}{{.Name}}{{else}}unnamed (no --roster){{end}}</td><td><code>{{.KeyID.Short}}</code></td>
<td{{if .Good}} class="good"{{else if .Bad}} class="bad"{{end}}>{{.Signature}}</td><td>{{if .Health}}{{.Health}}{{else}}-{{end}}</td></tr>
{{end}}</table>{{end}}{{end}}{{end}}
{{if and .Trustees (not .Named)}}<h2>Trustees now</h2><p>Without a roster (--roster) the page cannot tell which key is whose; the coordinator's last check:</p>
<ul>{{range .Trustees}}<li>{{.Id}}: {{if not .Reachable}}down: {{.Problem}}{{else if .Problem}}unfit: {{.Problem}}{{else}}up{{end}}</li>{{end}}</ul>{{end}}
{{template "foot"}}{{end}}

{{define "releases"}}{{template "head" "Releases"}}
<h1>Releases per region</h1>
{{template "source" .}}
{{with .St}}{{if .Regions}}
<table><tr><th>region</th><th>published version</th><th>last published</th><th>failures in a row</th><th>last error</th></tr>
{{range .Regions}}<tr{{if .Failures}} class="deny"{{end}}><td>{{.Name}}</td><td>v{{.PublishedVersion}}</td><td>{{pbtime .LastSuccess}}</td><td>{{.Failures}}</td><td>{{.LastError}}</td></tr>
{{end}}</table>
{{else}}<p>No region in this status: the coordinator reports its publishing through the Admin API (a state directory does not keep it).</p>{{end}}{{end}}
<h2>Which versions the fleet runs</h2>
{{if .Partial}}<p>Unknown: devices report the release they run with each call, and a state directory does not keep it (the Admin API, --operator, has it).</p>
{{else if .St}}{{with .Fleet}}{{if .Rows}}<table><tr><th>model</th><th>devices running it</th><th>published by</th></tr>
{{range .Rows}}<tr><td>{{.Model}}</td><td>devices running v{{.Version}}: {{.Devices}}</td><td>{{range $i, $r := .Published}}{{if $i}}, {{end}}{{$r}}{{else}}-{{end}}</td></tr>
{{end}}</table>{{end}}
<p>{{if .Silent}}{{.Silent}} enrolled devices reported no installed release since the coordinator started (no updater yet, or an older build).{{else if not .Rows}}No device has reported an installed release.{{end}}</p>{{end}}{{end}}
<p>Shadow-scoring results stay on the devices. A device scores each candidate release on its own user's typing before it
promotes it; those results are derived from that user's behaviour, and no privacy accountant covers them, so a device tells
the coordinator only which version it runs. A release a device is still shadow-scoring, or rejected, shows here as devices still running the older version.</p>
<h2>What devices see</h2>
{{if or .Releases .ReleasesErr}}<p>Each region's root, pointer, manifest and key epoch, verified as a device verifies them, with their expiries:</p>
{{if .ReleasesErr}}<p class="bad">{{.ReleasesErr}}</p>{{else}}<p class="good">Everything verifies.</p>{{end}}
<pre>{{.Releases}}</pre>
{{else}}<p>No region given (--root and --region).</p>{{end}}
{{template "foot"}}{{end}}

{{define "devices"}}{{template "head" "Devices"}}
<h1>Devices</h1>
{{template "source" .}}
{{with .St}}<p>{{len .Devices}} enrolled, {{len .Removed}} removed. The console shows the registry only: no behavioural data.</p>
<table><tr><th>device</th><th>region</th><th>enrolled</th><th>last seen</th><th>runs</th></tr>
{{range .Devices}}<tr><td>{{.Id}}</td><td>{{.Region}}</td><td>{{pbtime .Enrolled}}</td><td>{{if .LastSeen}}{{pbtime .LastSeen}}{{else if $.Partial}}unknown (state directory){{else}}not since the coordinator started{{end}}</td>
<td>{{if .Installed}}{{installed .Installed}}{{else if $.Partial}}unknown (state directory){{else}}not reported{{end}}</td></tr>
{{end}}</table>
{{if .Removed}}<h2>Removed (revoked)</h2><table><tr><th>device</th><th>removed</th><th>why</th></tr>
{{range .Removed}}<tr class="deny"><td>{{.Id}}</td><td>{{pbtime .Removed}}</td><td>{{.Reason}}</td></tr>{{end}}</table>{{end}}
{{end}}
{{template "foot"}}{{end}}
`
