package main

import "github.com/vigilauth/vigil/client/updater"

// installedVersions is client.Config.Installed for a device whose updaters keep its models:
// each updater's model with the version it runs. An updater with nothing installed yet, or a
// nil one, adds nothing. Only versions are reported: a candidate's shadow-scoring results are
// derived from the user's behaviour, which no privacy accountant covers, so they stay on the
// device.
func installedVersions(us ...*updater.Updater) func() map[string]uint64 {
	return func() map[string]uint64 {
		out := map[string]uint64{}
		for _, u := range us {
			if u == nil {
				continue
			}
			if s := u.Status(); s.Current != 0 {
				out[s.Model] = s.Current
			}
		}
		return out
	}
}
