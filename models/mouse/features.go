package mouse

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// FeatureSet names the features Extractor produces.
const FeatureSet = "mouse-action-v1"

// Features of one action, in vector order. Speeds are in pixels per second, accelerations in
// pixels per second squared, jerks in pixels per second cubed, taken as log(1+x) so that their
// long tails do not dominate; angles in radians.
var featureNames = [...]string{
	"duration", "path length", "distance from start to end", "straightness", "number of points",
	"mean speed", "spread of speed", "top speed",
	"mean acceleration", "spread of acceleration", "top acceleration",
	"mean jerk", "spread of jerk",
	"turning per pixel", "mean turn between points", "mean curvature", "spread of curvature",
	"largest deviation from the straight line", "share of sharp turns", "share of time paused",
	"time to top speed (share of duration)", "speed at the end (share of mean)", "sub-movements per point",
	"direction (cosine)", "direction (sine)",
	"click duration", "time from stopping to pressing",
}

// NumFeatures is the length of a feature vector.
const NumFeatures = len(featureNames)

// Indices of features with a unit or a role elsewhere.
const (
	fDuration     = 0
	fPathLength   = 1
	fDistance     = 2
	fMeanSpeed    = 5
	fTopSpeed     = 7
	fDirCos       = 23
	fDirSin       = 24
	fClick        = 25
	fStopToPress  = 26
	sharpTurn     = 0.5 // radians between successive segments
	pauseInAction = 100 * time.Millisecond
)

// FeatureNames describes each feature in plain words, in vector order.
func FeatureNames() []string { return featureNames[:] }

// ErrActionTooShort reports an action with too few distinct positions in time to describe.
var ErrActionTooShort = errors.New("mouse: action has too few distinct timed points")

// Extractor computes action features. It keeps scratch buffers so that Extract allocates
// nothing once warmed up; it is not safe for concurrent use.
type Extractor struct {
	t, x, y, v, a, theta []float64
}

// Extract writes the NumFeatures features of a into dst. Entries an action cannot have (a move
// has no click) are NaN.
func (e *Extractor) Extract(dst []float64, a Action) error {
	if len(dst) != NumFeatures {
		return fmt.Errorf("mouse: destination has %d entries, want %d", len(dst), NumFeatures)
	}
	// Positions with the same timestamp arrive in one batch: keep the last of each.
	e.t, e.x, e.y = e.t[:0], e.x[:0], e.y[:0]
	for i, p := range a.Points {
		sec := p.T.Seconds()
		if i > 0 && len(e.t) > 0 && sec <= e.t[len(e.t)-1] {
			e.x[len(e.x)-1], e.y[len(e.y)-1] = p.X, p.Y
			continue
		}
		e.t, e.x, e.y = append(e.t, sec), append(e.x, p.X), append(e.y, p.Y)
	}
	n := len(e.t)
	if n < 3 {
		return fmt.Errorf("%w: %d", ErrActionTooShort, n)
	}
	for i := range dst {
		dst[i] = math.NaN()
	}
	dur := e.t[n-1] - e.t[0]
	// Speeds between successive points, accelerations between successive speeds.
	e.v, e.a, e.theta = e.v[:0], e.a[:0], e.theta[:0]
	var length, paused, turning, sharp, maxDev float64
	dx, dy := e.x[n-1]-e.x[0], e.y[n-1]-e.y[0]
	dist := math.Hypot(dx, dy)
	for i := 1; i < n; i++ {
		sx, sy := e.x[i]-e.x[i-1], e.y[i]-e.y[i-1]
		seg := math.Hypot(sx, sy)
		dt := e.t[i] - e.t[i-1]
		length += seg
		e.v = append(e.v, seg/dt)
		if dt > pauseInAction.Seconds() {
			paused += dt
		}
		if seg > 0 {
			e.theta = append(e.theta, math.Atan2(sy, sx))
		}
		if dist > 0 {
			// Distance of the point from the straight line between start and end.
			dev := math.Abs(dx*(e.y[0]-e.y[i])-dy*(e.x[0]-e.x[i])) / dist
			maxDev = max(maxDev, dev)
		}
	}
	for i := 1; i < len(e.v); i++ {
		dt := (e.t[i+1] - e.t[i-1]) / 2
		e.a = append(e.a, (e.v[i]-e.v[i-1])/dt)
	}
	jMean, jSD, jN := 0.0, 0.0, 0.0
	for i := 1; i < len(e.a); i++ {
		dt := (e.t[i+1] - e.t[i-1]) / 2
		j := math.Abs(e.a[i]-e.a[i-1]) / dt
		jMean += j
		jSD += j * j
		jN++
	}
	var curvMean, curvSD, curvN float64
	for i := 1; i < len(e.theta); i++ {
		d := angleDiff(e.theta[i], e.theta[i-1])
		turning += math.Abs(d)
		if math.Abs(d) > sharpTurn {
			sharp++
		}
	}
	// Curvature: turn per pixel travelled, over segments that moved.
	for i := 2; i < n; i++ {
		ax, ay := e.x[i-1]-e.x[i-2], e.y[i-1]-e.y[i-2]
		bx, by := e.x[i]-e.x[i-1], e.y[i]-e.y[i-1]
		s := math.Hypot(bx, by)
		if s == 0 || (ax == 0 && ay == 0) {
			continue
		}
		c := math.Abs(angleDiff(math.Atan2(by, bx), math.Atan2(ay, ax))) / s
		curvMean += c
		curvSD += c * c
		curvN++
	}
	vMean, vSD, vMax := stats(e.v)
	aMean, aSD, aMax := absStats(e.a)
	dst[fDuration] = math.Log(max(dur*1000, 1))
	dst[fPathLength] = math.Log1p(length)
	dst[fDistance] = math.Log1p(dist)
	if length > 0 {
		dst[3] = dist / length
	}
	dst[4] = math.Log(float64(n))
	dst[fMeanSpeed], dst[6], dst[fTopSpeed] = math.Log1p(vMean), math.Log1p(vSD), math.Log1p(vMax)
	if len(e.a) > 0 {
		dst[8], dst[9], dst[10] = math.Log1p(aMean), math.Log1p(aSD), math.Log1p(aMax)
	}
	if jN > 0 {
		m := jMean / jN
		dst[11], dst[12] = math.Log1p(m), math.Log1p(math.Sqrt(max(jSD/jN-m*m, 0)))
	}
	if length > 0 {
		dst[13] = math.Log1p(100 * turning / length)
	}
	if len(e.theta) > 1 {
		dst[14] = turning / float64(len(e.theta)-1)
		dst[18] = sharp / float64(len(e.theta)-1)
	}
	if curvN > 0 {
		m := curvMean / curvN
		dst[15], dst[16] = math.Log1p(100*m), math.Log1p(100*math.Sqrt(max(curvSD/curvN-m*m, 0)))
	}
	dst[17] = math.Log1p(maxDev)
	if dur > 0 {
		dst[19] = paused / dur
		top := 0
		for i, v := range e.v {
			if v > e.v[top] {
				top = i
			}
		}
		dst[20] = (e.t[top+1] - e.t[0]) / dur
	}
	if vMean > 0 {
		tail := e.v[len(e.v)-max(len(e.v)/5, 1):]
		m, _, _ := stats(tail)
		dst[21] = m / vMean
	}
	minima := 0.0
	for i := 1; i+1 < len(e.v); i++ {
		if e.v[i] < e.v[i-1] && e.v[i] < e.v[i+1] {
			minima++
		}
	}
	dst[22] = minima / float64(n)
	if dist > 0 {
		dst[fDirCos], dst[fDirSin] = dx/dist, dy/dist
	}
	if a.Type != MoveAction && a.Release > a.Press {
		dst[fClick] = math.Log(max(float64(a.Release-a.Press)/float64(time.Millisecond), 1))
	}
	if a.Type == PointClick {
		// The last movement before the press: how long the pointer rested before clicking.
		last := a.Points[0].T
		for _, p := range a.Points {
			if p.T > a.Press {
				break
			}
			if p.State == Move {
				last = p.T
			}
		}
		dst[fStopToPress] = math.Log(max(float64(a.Press-last)/float64(time.Millisecond), 1))
	}
	return nil
}

// Direction returns the compass sector (0..7, 0 = rightwards, counting towards +y) of the
// movement's direction from feature vector f, or 0 when the action did not move.
func Direction(f []float64) int {
	c, s := f[fDirCos], f[fDirSin]
	if math.IsNaN(c) {
		return 0
	}
	ang := math.Atan2(s, c)
	if ang < 0 {
		ang += 2 * math.Pi
	}
	return int(ang/(math.Pi/4)+0.5) % 8
}

func angleDiff(a, b float64) float64 {
	d := a - b
	for d > math.Pi {
		d -= 2 * math.Pi
	}
	for d < -math.Pi {
		d += 2 * math.Pi
	}
	return d
}

// stats returns the mean, standard deviation and maximum of xs.
func stats(xs []float64) (mean, sd, top float64) {
	if len(xs) == 0 {
		return 0, 0, 0
	}
	top = xs[0]
	for _, x := range xs {
		mean += x
		top = max(top, x)
	}
	mean /= float64(len(xs))
	for _, x := range xs {
		sd += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(sd / float64(len(xs))), top
}

func absStats(xs []float64) (mean, sd, top float64) {
	for _, x := range xs {
		x = math.Abs(x)
		mean += x
		sd += x * x
		top = max(top, x)
	}
	if len(xs) == 0 {
		return 0, 0, 0
	}
	mean /= float64(len(xs))
	return mean, math.Sqrt(max(sd/float64(len(xs))-mean*mean, 0)), top
}
