package main

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"io"
	"os"

	"github.com/vigilauth/vigil/crypto/sig"
)

// reportHTML is the archivable page of a privacy report: self-contained, no scripts, no
// external resources, so that the signed bytes are all a reviewer needs.
var reportHTML = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Vigil privacy report</title>
<style>body{font-family:sans-serif;max-width:75em;margin:2em auto}table{border-collapse:collapse}td,th{border:1px solid #999;padding:2px 6px;text-align:right}th{background:#eee}.warn{color:#a00}</style>
</head><body>
<h1>Vigil privacy report</h1>
<p>Coordinator directory <code>{{.Dir}}</code>, generated {{.Generated}}{{if .Population}}, population {{.Population}} enrolled devices{{end}}.</p>
<h2>What is claimed</h2>
<dl><dt>Adjacency</dt><dd>{{.Adjacency}}</dd>
<dt>Mechanism</dt><dd>{{.Mechanism}}: Poisson-sampled Gaussian with participation known to the adversary</dd>
<dt>Accounting</dt><dd>{{.Accounting}}</dd></dl>
<h2>Trust assumptions</h2><ul>{{range .Assumptions}}<li>{{.}}</li>{{end}}</ul>
{{range .Models}}<h2>Model {{.Model}}</h2>
{{if .Unbounded}}<p>Ledger <code>{{.Ledger}}</code>; {{if $.StoreMissing}}<b class="warn">no model store</b>: rounds not checked against released models{{else}}{{.Versions}} stored versions{{end}}; privacy loss <b class="warn">unbounded</b>: differential privacy was off in round(s) {{range $i, $r := .Unprotected}}{{if $i}}, {{end}}{{$r}}{{end}} of {{len .Rounds}}, so no epsilon is spent or remaining (the ledger's budget, epsilon {{.Budget.Epsilon}} at delta {{.Budget.Delta}}, bounds nothing).</p>
{{else}}<p>Ledger <code>{{.Ledger}}</code>; {{if $.StoreMissing}}<b class="warn">no model store</b>: rounds not checked against released models{{else}}{{.Versions}} stored versions{{end}}; budget epsilon {{.Budget.Epsilon}} at delta {{.Budget.Delta}}; spent <b>{{printf "%.6g" .Spent}}</b>, remaining {{printf "%.6g" .Remaining}}.</p>{{end}}
{{if gt (len .ByModel) 1}}<p>Each model's rounds alone: {{range $i, $s := .ByModel}}{{if $i}}, {{end}}{{$s.Model}} {{if $s.Unbounded}}unbounded{{else}}{{printf "%.4g" $s.Epsilon}}{{end}} ({{$s.Rounds}} round(s)){{end}}; composed, {{if .Unbounded}}unbounded{{else}}{{printf "%.6g" .Spent}}{{end}}.</p>{{end}}
<table><tr><th>round</th><th>version</th><th>mechanism</th><th>z</th><th>q</th><th>C</th><th>m_min</th><th>t_dev</th><th>participants</th><th>epsilon</th><th>+round</th><th>time</th><th>released model SHA-256</th><th>store</th></tr>
{{range .Rounds}}<tr><td>{{.Round}}</td><td>{{if .Version}}{{.Model}} v{{.Version}}{{end}}</td><td>{{.Mechanism}}</td><td>{{.NoiseMultiplier}}</td><td>{{printf "%.4g" .SamplingRate}}</td><td>{{.ClipNorm}}</td><td>{{.MinParticipants}}</td><td>{{.ToleratedDevices}}</td><td>{{.Participants}}</td>{{if .Private}}<td>{{printf "%.6g" .Epsilon}}</td><td>{{printf "%.4g" .EpsilonIncrease}}</td>{{else}}<td class="warn">unbounded</td><td class="warn">unbounded</td>{{end}}<td>{{.Time}}</td><td><code>{{.ModelSHA256}}</code></td><td>{{.Store}}</td></tr>
{{end}}</table>{{end}}
<h2>Composed across {{.Composed.Models}} model(s)</h2>
{{if .Composed.Unbounded}}<p>privacy loss <b class="warn">unbounded</b>: differential privacy was off in some rounds, so no epsilon bounds it.</p>
{{else}}<p>epsilon <b>{{printf "%.6g" .Composed.Epsilon}}</b> at delta {{.Composed.Delta}} (RDP order {{.Composed.Order}}).</p>{{end}}
<h2>Warnings</h2>{{if .Warnings}}<ul>{{range .Warnings}}<li class="warn">{{.}}</li>{{end}}</ul>{{else}}<p>None.</p>{{end}}
</body></html>
`))

// runPrivacyVerifyReport is `vigil privacy verify-report`: check a signed HTML report against
// the reviewer's public key.
func runPrivacyVerifyReport(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("privacy verify-report", stdout)
	var htmlPath, sigPath, pubPath string
	fs.StringVar(&htmlPath, "html", "", "the report (required)")
	fs.StringVar(&sigPath, "sig", "", "its detached signature (default HTML.sig)")
	fs.StringVar(&pubPath, "public-key", "", "the signer's ML-DSA-65 public key (required)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if htmlPath == "" || pubPath == "" {
		return errors.New("--html and --public-key are required")
	}
	if sigPath == "" {
		sigPath = htmlPath + ".sig"
	}
	pub, err := sig.ReadPublicKeyFile(pubPath)
	if err != nil {
		return fmt.Errorf("--public-key: %w", err)
	}
	page, err := readCappedFile(htmlPath, 64<<20)
	if err != nil {
		return fmt.Errorf("--html: %w", err)
	}
	signature, err := readCappedFile(sigPath, 64<<10)
	if err != nil {
		return fmt.Errorf("--sig: %w", err)
	}
	if err := pub.Verify(page, signature, reportSignatureContext); err != nil {
		return refusedErr(fmt.Errorf("%s: %w", htmlPath, err)) // exit 1; 2 is for a wrong flag or file
	}
	fmt.Fprintf(stdout, "%s: signature by key %s is valid\n", htmlPath, pub.ID())
	return nil
}

func readCappedFile(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err == nil && int64(len(b)) > limit {
		err = fmt.Errorf("larger than %d bytes", limit)
	}
	return b, err
}
