// Package grafana holds vigil.json, the Grafana dashboard for Vigil's Prometheus metrics
// (rounds, device updates, privacy budget, publishing, SIEM export). It has no code: its test
// parses the dashboard and checks that every query names metrics, and labels, that the
// repository's code registers, so the dashboard cannot drift from the code.
package grafana
