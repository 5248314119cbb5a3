package eval

import (
	"context"
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/models/metrics"
	"github.com/vigilauth/vigil/models/mouse"
)

// mouseSet is one protocol's data: every user's enrolment and the scored sessions.
type mouseSet struct {
	users  []string
	enrol  []models.Enrolment
	tests  []mouseSession
	labels map[string]bool // nil: development protocol (every model scores every session)
}

// exploreSession is one scored session: detector means and the model's enrolment level.
type exploreSession struct {
	user     string
	impostor bool
	det      [numDetectors]float64
	level    float64
}

// TestExploreMouse compares deployable mouse populations and fusions on one load of the Balabit
// data; it runs only with VIGIL_EXPLORE_MOUSE set (variants, comma-separated, see
// exploreMouseVariant), since each variant takes tens of seconds.
func TestExploreMouse(t *testing.T) {
	variants := os.Getenv("VIGIL_EXPLORE_MOUSE")
	if variants == "" {
		t.Skip("VIGIL_EXPLORE_MOUSE not set")
	}
	skipWithout(t, balabitDir)
	ctx := context.Background()
	cfg := MouseConfig{Dir: balabitDir, Seed: 1, Privacy: PrivacyConfig{Epsilon: 8}}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	trainFiles, err := mouse.BalabitSessions(balabitDir, "training_files")
	if err != nil {
		t.Fatal(err)
	}
	train, _, err := loadMouseSessions(ctx, trainFiles, cfg.Segment, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	byUser := map[string][]mouseSession{}
	for _, s := range train {
		byUser[s.user] = append(byUser[s.user], s)
	}
	var users []string
	for u := range byUser {
		users = append(users, u)
	}
	sort.Strings(users)
	mk := func(byUser map[string][]mouseSession) []models.Enrolment {
		out := make([]models.Enrolment, len(users))
		for i, u := range users {
			var e models.Enrolment
			for _, s := range byUser[u] {
				e.Windows = append(e.Windows, s.windows...)
			}
			for _, w := range e.Windows {
				e.Summaries = append(e.Summaries, w.Dense)
			}
			e.Summaries = sample(e.Summaries, cfg.MaxRows)
			out[i] = e
		}
		return out
	}
	test := mouseSet{users: users, enrol: mk(byUser)}
	testFiles, _ := mouse.BalabitSessions(balabitDir, "test_files")
	test.labels, _ = mouse.BalabitLabels(balabitDir)
	var labelled []mouse.Session
	for _, s := range testFiles {
		if _, ok := test.labels[s.Name]; ok && byUser[s.User] != nil {
			labelled = append(labelled, s)
		}
	}
	test.tests, _, _ = loadMouseSessions(ctx, labelled, cfg.Segment, 0, nil)
	devBy := map[string][]mouseSession{}
	for u, ss := range byUser {
		devBy[u] = ss
	}
	dev := mouseSet{users: users}
	dev.tests = holdOut(devBy, users, cfg.DevActions)
	dev.enrol = mk(devBy)

	for _, v := range strings.Split(variants, ",") {
		for _, set := range []struct {
			name string
			s    mouseSet
		}{{"dev", dev}, {"test", test}} {
			if strings.HasPrefix(v, "testonly") && set.name == "dev" {
				continue
			}
			sess, note, err := exploreMouseVariant(ctx, t, strings.TrimPrefix(v, "testonly"), set.s, cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s %s: %s", v, set.name, note)
			reportFusions(t, sess)
		}
	}
}

// exploreMouseVariant builds the variant's population and scores the set's sessions. A variant
// is fields separated by ':': eps (number or inf; plain: exact population), then key=value
// settings: clip, maxdev, maxvar, rel, margin, w (five weights, '/'), fleet, backoff, pool,
// prel, pclamp, and scale=oracle: the reference from the exact pooled spread of the data
// itself, which no deployment has (it measures what scales could bring); otherwise the
// centring round learns the reference.
func exploreMouseVariant(ctx context.Context, t *testing.T, v string, set mouseSet, cfg MouseConfig) ([]exploreSession, string, error) {
	parts := strings.Split(v, ":")
	layout := mouse.NewLayout()
	pc := PrivacyConfig{Epsilon: 8}
	if parts[0] == "inf" {
		pc.Epsilon = math.Inf(1)
	} else if e, err := strconv.ParseFloat(parts[0], 64); err == nil {
		pc.Epsilon = e
	}
	pc.Fleet = 500
	pc.Stats.Clip = 80
	pc.Stats.PoolByRoot = true
	scale := "none"
	mc := cfg.Model
	for _, kv := range parts[1:] {
		k, val, _ := strings.Cut(kv, "=")
		f, _ := strconv.ParseFloat(val, 64)
		switch k {
		case "clip":
			pc.Stats.Clip = f
		case "maxdev":
			pc.Stats.MaxDev = f
		case "maxvar":
			pc.Stats.MaxVar = f
		case "rel":
			pc.Stats.Relevance = f
		case "margin":
			pc.Stats.NoiseMargin = f
		case "fleet":
			pc.Fleet = int(f)
		case "backoff":
			pc.Stats.Backoff = true
		case "pool":
			pc.Stats.PoolByRoot = val == "root"
		case "w":
			for i, s := range strings.Split(val, "/") {
				pc.Stats.Weight[i], _ = strconv.ParseFloat(s, 64)
			}
		case "scale":
			scale = val
		case "prel":
			mc.Profile.Relevance = f
		case "pclamp":
			mc.Profile.Clamp = f
		}
	}
	if err := pc.validate(); err != nil {
		return nil, "", err
	}
	var ref *models.Reference
	if scale == "oracle" {
		r, err := exploreReference(ctx, layout, set, pc, scale, cfg.Seed)
		if err != nil {
			return nil, "", err
		}
		ref = r
	}
	pop, rep, err := privatePopulation(ctx, layout, ref, set.users, set.enrol, pc, cfg.Seed, 0)
	if err != nil {
		return nil, "", err
	}
	note := fmt.Sprintf("z %.3f clip %v noise %.3f buckets %d/%d", rep.NoiseMultiplier, rep.Clip, rep.DeviceNoise, rep.Buckets, rep.Total)
	g := &models.Global{Population: pop}
	ms := make([]*models.UserModel, len(set.users))
	err = forEach(ctx, len(set.users), 0, nil, func(i int) error {
		c := mc
		c.Train.Seed, c.Forest.Seed = cfg.Seed+uint64(i), cfg.Seed+uint64(i)
		m, err := models.FitUserModel(ctx, layout, g, set.enrol[i], c)
		ms[i] = m
		return err
	})
	if err != nil {
		return nil, "", err
	}
	idx := map[string]int{}
	for i, u := range set.users {
		idx[u] = i
	}
	var out []exploreSession
	for _, s := range set.tests {
		if len(s.windows) == 0 {
			continue
		}
		if set.labels == nil {
			for i, u := range set.users {
				out = append(out, exploreSession{user: u, impostor: u != s.user, det: detectorMeans(ms[i], s.windows), level: ms[i].EnrolmentLevel()})
			}
			continue
		}
		m := ms[idx[s.user]]
		out = append(out, exploreSession{user: s.user, impostor: set.labels[s.name], det: detectorMeans(m, s.windows), level: m.EnrolmentLevel()})
	}
	return out, note, nil
}

// exploreReference returns a reference with scales: "oracle" from the exact pooled spread of
// the set's own data (not deployable: it measures what a scale could bring).
func exploreReference(ctx context.Context, layout *models.Layout, set mouseSet, pc PrivacyConfig, how string, seed uint64) (*models.Reference, error) {
	var all []models.Window
	for _, e := range set.enrol {
		all = append(all, e.Windows...)
	}
	switch how {
	case "oracle":
		ref, err := models.ReferenceByKind(layout, all)
		if err != nil {
			return nil, err
		}
		// ReferenceByKind pools event buckets per kind; here each bucket takes its root
		// feature's mean and spread.
		nb := layout.NumBuckets()
		n, s, q := make([]float64, nb), make([]float64, nb), make([]float64, nb)
		root := func(b int) int {
			for layout.Parent[b] >= 0 {
				b = layout.Parent[b]
			}
			return b
		}
		for _, w := range all {
			for _, e := range w.Events {
				r := root(e.Bucket)
				n[r]++
				s[r] += e.Value
				q[r] += e.Value * e.Value
			}
		}
		for b := 0; b < nb; b++ {
			if b >= layout.DenseBase {
				continue
			}
			r := root(b)
			if n[r] == 0 {
				continue
			}
			m := s[r] / n[r]
			ref.Center[b] = m
			ref.Scale[b] = math.Sqrt(max(q[r]/n[r]-m*m, 1e-6))
		}
		return &ref, nil
	}
	return nil, fmt.Errorf("unknown scale %q", how)
}

// reportFusions logs AUC for detector weights and threshold slopes.
func reportFusions(t *testing.T, sess []exploreSession) {
	var typical float64
	for _, s := range sess {
		typical += s.level / float64(len(sess))
	}
	auc := func(w [3]float64, slope float64) (float64, Interval) {
		var g, im []float64
		for _, s := range sess {
			v := w[0]*s.det[detProfile] + w[1]*s.det[detAutoencoder] + w[2]*s.det[detForest] - slope*(s.level-typical)
			if s.impostor {
				im = append(im, v)
			} else {
				g = append(g, v)
			}
		}
		a, _ := metrics.AUC(g, im)
		return a, bootstrapAUC(g, im, uint64(len(sess)))
	}
	var line strings.Builder
	for _, w := range [][3]float64{{1, 0.05, 0.05}, {1, 0.1, 0}, {1, 0.2, 0}, {1, 0.3, 0}, {1, 0.5, 0}, {1, 0.2, 0.05}, {1, 0.5, 0.1}} {
		byUser := map[string]*levelScores{}
		var us []string
		for _, s := range sess {
			l := byUser[s.user]
			if l == nil {
				l = &levelScores{level: s.level}
				byUser[s.user] = l
				us = append(us, s.user)
			}
			v := w[0]*s.det[detProfile] + w[1]*s.det[detAutoencoder] + w[2]*s.det[detForest]
			if s.impostor {
				l.imp = append(l.imp, v)
			} else {
				l.gen = append(l.gen, v)
			}
		}
		var ls []levelScores
		for _, u := range us {
			ls = append(ls, *byUser[u])
		}
		fit, eer, _ := fitThreshold(ls)
		fmt.Fprintf(&line, "\n  w %v: fitted pooled EER %.4f %+v", w, eer, fit)
		fmt.Fprintf(&line, "\n  w %v:", w)
		for _, sl := range []float64{0, 0.25, 0.5, 0.75, 1} {
			a, ci := auc(w, sl)
			fmt.Fprintf(&line, " s%.2f %.4f", sl, a)
			if sl == 0.5 {
				fmt.Fprintf(&line, "[%.3f,%.3f]", ci.Lo, ci.Hi)
			}
		}
	}
	t.Log(line.String())
}

func TestExploreMouseScales(t *testing.T) {
	if os.Getenv("VIGIL_EXPLORE_MOUSE") == "" {
		t.Skip()
	}
	ctx := context.Background()
	trainFiles, _ := mouse.BalabitSessions(balabitDir, "training_files")
	var seg mouse.SegmentConfig
	seg, _ = seg.WithDefaults()
	train, _, _ := loadMouseSessions(ctx, trainFiles, seg, 0, nil)
	byUser := map[string][]models.Window{}
	for _, s := range train {
		byUser[s.user] = append(byUser[s.user], s.windows...)
	}
	names := mouse.FeatureNames()
	for f := range names {
		var n, s, q float64
		var wv, wn float64
		var um []float64
		for _, ws := range byUser {
			var un, us, uq float64
			for _, w := range ws {
				v := w.Dense[f]
				if math.IsNaN(v) {
					continue
				}
				un++
				us += v
				uq += v * v
			}
			if un < 2 {
				continue
			}
			m := us / un
			um = append(um, m)
			wv += uq - un*m*m
			wn += un - 1
			n += un
			s += us
			q += uq
		}
		m := s / n
		var bv float64
		for _, x := range um {
			bv += (x - m) * (x - m) / float64(len(um))
		}
		t.Logf("%2d %-40s mean %9.4f total sd %9.4f within sd %9.4f between sd %9.4f", f, names[f], m, math.Sqrt(q/n-m*m), math.Sqrt(wv/wn), math.Sqrt(bv))
	}
}
