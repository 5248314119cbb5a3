package coordinator

import (
	"cmp"
	"maps"
	"slices"

	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// recordInstalled keeps what a registered device said it runs (GetTaskRequest.installed), in
// place of its previous report, for the operator's status. installed has been validated
// (vigilv1.ValidInstalled). An empty report keeps the previous one: a device that has not
// started its updater yet, or an older build, says nothing rather than "nothing installed".
//
// The reports are kept in memory only, beside the last-seen times: a device repeats its report
// with every poll, so after a restart the counts fill again within one long poll, and nothing
// on disk is needed to show the fleet.
func (c *Coordinator) recordInstalled(id string, installed map[string]uint64) {
	if len(installed) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.devices[id]; !ok {
		return
	}
	if c.installed == nil {
		c.installed = map[string]map[string]uint64{}
	}
	if prev, ok := c.installed[id]; ok && maps.Equal(prev, installed) {
		return
	}
	c.installed[id] = maps.Clone(installed)
}

// installedStatusLocked counts the registered devices per reported model version, by model
// then version, and fills each device's report in devices. c.mu must be held.
func (c *Coordinator) installedStatusLocked(devices []*vigilv1.DeviceStatus) []*vigilv1.InstalledCount {
	type key struct {
		model   string
		version uint64
	}
	counts := map[key]uint32{}
	for _, d := range devices {
		inst, ok := c.installed[d.GetId()]
		if !ok {
			continue
		}
		d.Installed = maps.Clone(inst)
		for m, v := range inst {
			counts[key{m, v}]++
		}
	}
	out := make([]*vigilv1.InstalledCount, 0, len(counts))
	for k, n := range counts {
		out = append(out, &vigilv1.InstalledCount{Model: k.model, Version: k.version, Devices: n})
	}
	slices.SortFunc(out, func(a, b *vigilv1.InstalledCount) int {
		return cmp.Or(cmp.Compare(a.GetModel(), b.GetModel()), cmp.Compare(a.GetVersion(), b.GetVersion()))
	})
	return out
}
