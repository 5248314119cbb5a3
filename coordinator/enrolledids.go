package coordinator

import "sort"

// enrolledIDs keeps the registry's device IDs in order between rounds. A round samples from
// the sorted IDs, and sorting a million of them at every round start took about 0.5 s of CPU
// with the coordinator's lock held (BenchmarkScaleStartRound); merging in the devices admitted
// or removed since the last round is linear. The zero value is ready; c.mu guards it.
type enrolledIDs struct {
	ids     []string
	built   bool
	changed map[string]struct{} // admitted, replaced or removed since ids was built
}

func (e *enrolledIDs) note(id string) {
	if !e.built {
		return
	}
	if e.changed == nil {
		e.changed = map[string]struct{}{}
	}
	e.changed[id] = struct{}{}
}

// sorted returns the IDs of devices, sorted. The caller must not modify the slice, which is
// valid until the next call (round.Engine.StartPlan copies it).
func (e *enrolledIDs) sorted(devices map[string]device) []string {
	if !e.built {
		return e.rebuild(devices)
	}
	added := make([]string, 0, len(e.changed))
	for id := range e.changed {
		if _, ok := devices[id]; ok {
			added = append(added, id)
		}
	}
	sort.Strings(added)
	out := make([]string, 0, len(devices))
	i := 0
	for _, id := range e.ids {
		if _, ok := e.changed[id]; ok {
			continue
		}
		for ; i < len(added) && added[i] < id; i++ {
			out = append(out, added[i])
		}
		out = append(out, id)
	}
	out = append(out, added[i:]...)
	if len(out) != len(devices) {
		// A change that was not noted (the registry is filled directly at restore): start over.
		return e.rebuild(devices)
	}
	e.ids = out
	clear(e.changed)
	return out
}

func (e *enrolledIDs) rebuild(devices map[string]device) []string {
	e.ids = make([]string, 0, len(devices))
	for id := range devices {
		e.ids = append(e.ids, id)
	}
	sort.Strings(e.ids)
	e.built = true
	clear(e.changed)
	return e.ids
}
