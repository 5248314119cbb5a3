package console

import (
	"archive/tar"
	"bytes"
	"context"
	"net/http"
	"time"
)

// reportTimeout bounds building the privacy report, which reads every ledger and hashes every
// released model.
const reportTimeout = time.Minute

// privacyReport serves the signed privacy report as one tar file holding the HTML page and its
// detached signature (vigil privacy verify-report checks them). One file, built in one call,
// because the page carries the time it was made: two downloads could pair a page with the
// signature of another.
func (c *console) privacyReport(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), reportTimeout)
	defer cancel()
	page, signature, err := c.cfg.PrivacyReport(ctx)
	if err != nil {
		http.Error(w, "console: privacy report: "+err.Error(), http.StatusInternalServerError)
		return
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	now := time.Now()
	for _, f := range []struct {
		name string
		data []byte
	}{{"privacy-report.html", page}, {"privacy-report.html.sig", signature}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.data)), ModTime: now, Typeflag: tar.TypeReg}); err != nil {
			http.Error(w, "console: privacy report: "+err.Error(), http.StatusInternalServerError)
			return
		}
		tw.Write(f.data)
	}
	if err := tw.Close(); err != nil {
		http.Error(w, "console: privacy report: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/x-tar")
	w.Header().Set("Content-Disposition", `attachment; filename="privacy-report.tar"`)
	w.Write(buf.Bytes())
}
