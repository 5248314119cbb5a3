package takeover

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/models/eval"
	"github.com/vigilauth/vigil/models/keystroke"
)

// TestExploreDevelopment replays the first 100 (development) participants against the
// deployable population at epsilon 8 from all 500 devices, for the variants listed in
// VIGIL_EXPLORE_TAKEOVER, separated by commas. A variant is [population|]threshold[|guard]:
// population settings "backoff;clip=C;rel=R;margin=M"; threshold
// offset/slope/typical/temperature[/ae/forest], or "default" for the layout's; guard settings
// "spt=S;hpt=H;mbl=L;la=A;gpm=G;cb=B;gpw=W;sus=N;hop=K" (SoftPassTrust, HardPassTrust,
// MaxBehaviourLoss, LossAbove, GainPerMinute, ConsistentBelow, GainPerWindow, Sustain and the
// keystroke hop; the defaults where left out). VIGIL_SEED and
// VIGIL_IMPOSTORS set the seed and the takeovers per participant.
func TestExploreDevelopment(t *testing.T) {
	variants := os.Getenv("VIGIL_EXPLORE_TAKEOVER")
	if variants == "" {
		t.Skip("VIGIL_EXPLORE_TAKEOVER not set")
	}
	dir := "../../../shared/datasets/aalto-keystrokes"
	ctx := context.Background()
	seed, _ := strconv.ParseUint(os.Getenv("VIGIL_SEED"), 10, 64)
	if seed == 0 {
		seed = 1
	}
	imp, _ := strconv.Atoi(os.Getenv("VIGIL_IMPOSTORS"))
	cfg := Config{Dir: dir, Seed: seed, Impostors: imp, Privacy: eval.PrivacyConfig{Epsilon: 8}}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	files, _ := keystroke.AaltoFiles(dir)
	ps, _, err := loadParticipants(ctx, files, &cfg)
	if err != nil {
		t.Fatal(err)
	}
	layout := keystroke.NewLayout()
	ids := make([]string, len(ps))
	enrol := make([]models.Enrolment, len(ps))
	for i, p := range ps {
		ids[i], enrol[i] = p.id, p.enrol
	}
	pops := map[string]*models.Global{}
	population := func(name string) *models.Global {
		if g := pops[name]; g != nil {
			return g
		}
		pc := cfg.Privacy
		for _, kv := range strings.Split(name, ";") {
			k, val, _ := strings.Cut(kv, "=")
			f, _ := strconv.ParseFloat(val, 64)
			switch k {
			case "backoff":
				pc.Stats.Backoff = true
			case "clip":
				pc.Stats.Clip = f
			case "rel":
				pc.Stats.Relevance = f
			case "margin":
				pc.Stats.NoiseMargin = f
			}
		}
		g, _, err := eval.FederatePrivately(ctx, layout, ids, enrol, pc, cfg.Seed, 0)
		if err != nil {
			t.Fatal(err)
		}
		pops[name] = g
		return g
	}
	n := 0
	for n < len(ps) && n < 100 {
		n++
	}
	dev := ps[:n]
	for _, v := range strings.Split(variants, ",") {
		c := cfg
		popName, v, ok := strings.Cut(v, "|")
		if !ok {
			popName, v = "", popName
		}
		global := population(popName)
		v, gv, _ := strings.Cut(v, "|")
		for _, kv := range strings.Split(gv, ";") {
			k, val, _ := strings.Cut(kv, "=")
			f, _ := strconv.ParseFloat(val, 64)
			tc := &c.Guard.Trust
			switch k {
			case "spt":
				c.Guard.Tiers.SoftPassTrust = f
			case "hpt":
				c.Guard.Tiers.HardPassTrust = f
			case "mbl":
				tc.MaxBehaviourLoss = f
			case "la":
				tc.LossAbove = f
			case "gpm":
				tc.GainPerMinute = f
			case "cb":
				tc.ConsistentBelow = f
			case "gpw":
				tc.GainPerWindow = f
			case "sus":
				tc.Sustain = int(f)
			case "hop":
				c.Hop = int(f)
				c.Guard.KeystrokeHop = c.Hop
			}
		}
		if v != "default" {
			var f []float64
			for _, s := range strings.Split(v, "/") {
				x, _ := strconv.ParseFloat(s, 64)
				f = append(f, x)
			}
			c.Model.Threshold = models.ThresholdConfig{Offset: f[0], Slope: f[1], Typical: f[2], Temperature: f[3], Set: true}
			if len(f) > 5 {
				c.Model.Weights = models.Weights{Profile: 1, Autoencoder: f[4], Forest: f[5]}
			}
		}
		rp, _ := newReplayer(c.Guard)
		outs := make([]userRuns, len(dev))
		err := forEach(ctx, len(dev), 0, nil, func(i int) error {
			var err error
			outs[i], err = replayUser(ctx, rp, layout, global, dev, i, &c)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		res := &Result{}
		summarise(res, outs)
		t.Logf("%s", fmt.Sprintf(popName+"|"+gv+"|"+"%-40s median %.0f missed %.2f%% false %.3f per 1000 (%d in %d sessions)", v, res.Takeover.Median, 100*res.Takeover.MissedShare, res.Genuine.Per1000, res.Genuine.Challenges, res.Genuine.SessionsChallenged))
	}
}
