package console

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/vigilauth/vigil/crypto/sig"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
	"github.com/vigilauth/vigil/release"
)

// keyEpochView is one key-epoch document as the key epochs page shows it: its fields, and
// each signature checked on its own against the root's trustees role.
type keyEpochView struct {
	Path string
	Err  string // the document could not be read or decoded
	Doc  *release.KeyEpoch
	// Verified: a threshold of the trustees role's keys signed it (release.VerifyDocument);
	// VerifyErr why not.
	Verified  bool
	VerifyErr string
	Expired   bool
	Threshold int
	Valid     int
	Rows      []signerRow
}

// signerRow is one key of the trustees role, or one signature by a key outside it.
type signerRow struct {
	Name  string // from the roster; "" when unknown
	KeyID sig.KeyID
	// Signature is what became of the key's signature: "verifies", "does not verify: ...",
	// "none", or "not a trustees key: does not count".
	Signature string
	Good, Bad bool
	// Health is the trustee's health in the coordinator's status: "up", "down: ...", or
	// "" when the status does not name it.
	Health string
	Down   bool
}

// keyEpochsPage is the key epochs page.
type keyEpochsPage struct {
	statusPage
	RootErr     string
	RootVersion uint64
	RoleKeys    int
	// RoleThreshold is how many of the trustees role's keys must sign a key epoch.
	RoleThreshold int
	Named         bool // a roster names the signers
	Epochs        []keyEpochView
	// Trustees are the status's trustees, for when no roster links them to keys.
	Trustees []*vigilv1.TrusteeStatus
}

func (c *console) keyEpochs(w http.ResponseWriter, r *http.Request) {
	p := keyEpochsPage{statusPage: c.readStatus(r), Named: len(c.cfg.Signers) > 0}
	root := c.cfg.TrustRoot
	if root == nil {
		p.RootErr = "no root of trust given (--root): the signatures cannot be checked"
	} else {
		p.RootVersion = root.Version
		ids, threshold := root.RoleKeyIDs(release.RoleTrustees)
		p.RoleKeys, p.RoleThreshold = len(ids), threshold
	}
	health := map[string]*vigilv1.TrusteeStatus{}
	if p.St != nil {
		p.Trustees = p.St.GetTrustees()
		for _, t := range p.Trustees {
			health[t.GetId()] = t
		}
	}
	for _, path := range c.cfg.KeyEpochs {
		p.Epochs = append(p.Epochs, c.keyEpoch(path, root, health, p.Now))
	}
	c.render(w, "keyepochs", p)
}

// keyEpoch reads and checks one key-epoch document.
func (c *console) keyEpoch(path string, root *release.Root, health map[string]*vigilv1.TrusteeStatus, now time.Time) keyEpochView {
	v := keyEpochView{Path: path}
	data, err := readBounded(path, release.MaxEnvelopeBytes)
	if err != nil {
		v.Err = err.Error()
		return v
	}
	env, doc, err := release.DecodeUnverified(data)
	if err != nil {
		v.Err = err.Error()
		return v
	}
	k, ok := doc.(*release.KeyEpoch)
	if !ok {
		v.Err = fmt.Sprintf("not a key-epoch document (%s)", env.PayloadType)
		return v
	}
	v.Doc, v.Expired = k, !now.Before(k.Expires)
	if root == nil {
		return v
	}
	if _, err := release.VerifyDocument(root, data); err != nil {
		v.VerifyErr = err.Error()
	} else {
		v.Verified = true
	}
	checks, threshold := root.CheckSignatures(env, release.RoleTrustees)
	v.Threshold = threshold
	byKey := map[sig.KeyID]release.SignatureCheck{}
	for _, ch := range checks {
		byKey[ch.KeyID] = ch
		if ch.Valid() {
			v.Valid++
		}
	}
	ids, _ := root.RoleKeyIDs(release.RoleTrustees)
	for _, id := range ids {
		row := signerRow{Name: c.cfg.Signers[id], KeyID: id, Signature: "none"}
		if ch, ok := byKey[id]; ok {
			if ch.Err == nil {
				row.Signature, row.Good = "verifies", true
			} else {
				row.Signature, row.Bad = "does not verify: "+ch.Err.Error(), true
			}
		}
		if t := health[row.Name]; row.Name != "" && t != nil {
			row.Health, row.Down = trusteeHealth(t), !t.GetReachable() || t.GetProblem() != ""
		}
		v.Rows = append(v.Rows, row)
	}
	for _, ch := range checks {
		if !ch.InRole {
			v.Rows = append(v.Rows, signerRow{Name: c.cfg.Signers[ch.KeyID], KeyID: ch.KeyID, Signature: "not a trustees key: does not count", Bad: true})
		}
	}
	// Trustees by name when the roster names them, so the page reads as the trustees page.
	if len(c.cfg.Signers) > 0 {
		slices.SortStableFunc(v.Rows, func(a, b signerRow) int {
			return strings.Compare(a.Name, b.Name)
		})
	}
	return v
}

// trusteeHealth says how a trustee stood at the coordinator's last check, as the trustees page
// says it.
func trusteeHealth(t *vigilv1.TrusteeStatus) string {
	switch {
	case !t.GetReachable():
		return "down: " + t.GetProblem()
	case t.GetProblem() != "":
		return "unfit: " + t.GetProblem()
	}
	return "up"
}

// readBounded reads a file, refusing one larger than limit bytes.
func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than a signed document can be (%d bytes)", path, limit)
	}
	return data, nil
}
