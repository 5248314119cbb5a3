package guard

import (
	"fmt"
	"math"
	"time"
)

// earthRadiusKm is the mean Earth radius (IUGG), the usual choice for haversine distances.
const earthRadiusKm = 6371.0088

// fix is a located observation.
type fix struct {
	lat, lon, accKm float64
	at              time.Time
}

// haversineKm returns the great-circle distance between two points given in degrees.
func haversineKm(lat1, lon1, lat2, lon2 float64) float64 {
	rad := math.Pi / 180
	dLat := (lat2 - lat1) * rad
	dLon := (lon2 - lon1) * rad
	a := math.Sin(dLat/2)*math.Sin(dLat/2) +
		math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * earthRadiusKm * math.Asin(math.Min(1, math.Sqrt(a)))
}

// travel is the outcome of comparing two fixes.
type travel struct {
	distKm    float64       // great-circle distance between the centres
	marginKm  float64       // distance beyond both uncertainty radii: what must have been travelled
	elapsed   time.Duration // time between the fixes
	speedKmh  float64       // marginKm over elapsed; +Inf if no time passed
	severity  float64       // 0 plausible .. 1 certainly impossible
	plausible bool
}

// checkTravel decides whether going from a to b is possible at maxKmh. Both locations are
// uncertain by their radii, so only the distance beyond both radii must have been covered:
// two IP-geolocated fixes in neighbouring cities a minute apart are not impossible travel.
// The severity rises linearly from 0 at the limit to 1 at twice the limit.
func checkTravel(a, b fix, maxKmh float64) travel {
	t := travel{distKm: haversineKm(a.lat, a.lon, b.lat, b.lon), elapsed: b.at.Sub(a.at)}
	t.marginKm = math.Max(0, t.distKm-a.accKm-b.accKm)
	if t.marginKm == 0 {
		t.plausible = true
		return t
	}
	hours := t.elapsed.Hours()
	if hours <= 0 {
		t.speedKmh = math.Inf(1)
	} else {
		t.speedKmh = t.marginKm / hours
	}
	if t.speedKmh <= maxKmh {
		t.plausible = true
		return t
	}
	t.severity = math.Min(1, t.speedKmh/maxKmh-1)
	return t
}

func (t travel) String() string {
	speed := "instantly"
	if !math.IsInf(t.speedKmh, 1) {
		speed = fmt.Sprintf("at %.0f km/h", t.speedKmh)
	}
	return fmt.Sprintf("%.0f km in %v (%s)", t.distKm, t.elapsed.Round(time.Second), speed)
}
