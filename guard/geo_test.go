package guard

import (
	"math"
	"strings"
	"testing"
	"time"
)

// TestHaversineKnownDistances checks great-circle distances against published city-to-city
// figures (within 0.5%) and against exact geometry.
func TestHaversineKnownDistances(t *testing.T) {
	cases := []struct {
		name                   string
		lat1, lon1, lat2, lon2 float64
		wantKm                 float64
	}{
		{"New York - London", 40.7128, -74.0060, 51.5074, -0.1278, 5570},
		{"Paris - London", 48.8566, 2.3522, 51.5074, -0.1278, 344},
		{"Chicago - Warsaw", 41.8781, -87.6298, 52.2297, 21.0122, 7510},
		{"Los Angeles - Tokyo", 34.0522, -118.2437, 35.6762, 139.6503, 8815},
		{"equator quarter turn", 0, 0, 0, 90, math.Pi / 2 * earthRadiusKm},
		{"antipodes", 10, 20, -10, -160, math.Pi * earthRadiusKm},
		{"same point", 41.8781, -87.6298, 41.8781, -87.6298, 0},
	}
	for _, c := range cases {
		got := haversineKm(c.lat1, c.lon1, c.lat2, c.lon2)
		if math.Abs(got-c.wantKm) > 0.005*c.wantKm+1e-9 {
			t.Errorf("%s: %.1f km, want %.0f km", c.name, got, c.wantKm)
		}
	}
}

func TestCheckTravel(t *testing.T) {
	chi := fix{lat: 41.8781, lon: -87.6298, accKm: 50, at: time.Date(2025, 2, 24, 16, 0, 0, 0, time.UTC)}
	at := func(f fix, lat, lon, acc float64, d time.Duration) fix {
		return fix{lat: lat, lon: lon, accKm: acc, at: f.at.Add(d)}
	}
	cases := []struct {
		name         string
		to           fix
		plausible    bool
		severityMin  float64
		severityMax  float64
		textContains string
	}{
		{"same city, other IP-geo fix, a minute later", at(chi, 41.95, -87.75, 50, time.Minute), true, 0, 0, ""},
		{"Evanston (19 km) by IP geolocation 30 s later: within the radii", at(chi, 42.0451, -87.6877, 50, 30*time.Second), true, 0, 0, ""},
		{"Evanston by GPS 30 s later: 2,300 km/h", at(chi, 42.0451, -87.6877, 0.05, 30*time.Second), false, 1, 1, "in 30s"},
		{"Warsaw 10 hours later (a flight)", at(chi, 52.2297, 21.0122, 50, 10*time.Hour), true, 0, 0, ""},
		{"Warsaw 4 hours later", at(chi, 52.2297, 21.0122, 50, 4*time.Hour), false, 0.8, 0.9, "1853 km/h"},
		{"Warsaw 1 hour later", at(chi, 52.2297, 21.0122, 50, time.Hour), false, 1, 1, ""},
		{"Warsaw at the same instant", at(chi, 52.2297, 21.0122, 50, 0), false, 1, 1, "instantly"},
		{"Milwaukee (131 km) by GPS in 10 minutes: 785 km/h", at(chi, 43.0389, -87.9065, 0.1, 10*time.Minute), true, 0, 0, ""},
		{"Milwaukee by GPS in 5 minutes: 1,570 km/h", at(chi, 43.0389, -87.9065, 0.1, 5*time.Minute), false, 0.5, 0.6, "1570 km/h"},
	}
	precise := chi
	precise.accKm = 0.1
	for _, c := range cases {
		from := chi
		if c.to.accKm < 1 {
			from = precise
		}
		tr := checkTravel(from, c.to, 1000)
		if tr.plausible != c.plausible || tr.severity < c.severityMin || tr.severity > c.severityMax {
			t.Errorf("%s: %+v, want plausible=%v severity in [%v, %v]", c.name, tr, c.plausible, c.severityMin, c.severityMax)
		}
		if !strings.Contains(tr.String(), c.textContains) {
			t.Errorf("%s: %q lacks %q", c.name, tr, c.textContains)
		}
	}
}
