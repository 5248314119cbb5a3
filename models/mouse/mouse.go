// Package mouse turns raw pointer events into mouse actions (plain moves, point-and-clicks,
// drag-and-drops) and each action into features of its movement (velocity, acceleration, jerk,
// curvature, angle changes, straightness, pauses, click and drag durations), and reads the
// Balabit Mouse Dynamics Challenge files.
package mouse

import (
	"time"

	"github.com/vigilauth/vigil/models"
)

// Button is the mouse button an event concerns.
type Button uint8

// Buttons.
const (
	NoButton Button = iota
	Left
	Right
	Middle
	Scroll
	XButton
)

// State is what happened.
type State uint8

// States. Balabit records a drag as NoButton/Drag events between a Pressed and a Released.
const (
	Move State = iota
	Pressed
	Released
	Drag
	Down // scroll down
	Up   // scroll up
)

// Event is one raw pointer event. T is the time since the session's start.
type Event struct {
	T      time.Duration
	Button Button
	State  State
	X, Y   float64
}

// ReadStats counts what a reader kept and what it dropped, by reason.
type ReadStats = models.ReadStats

// Reasons rows (and actions) are dropped.
const (
	DropMalformed    = "malformed row"
	DropUnknown      = "unknown button or state"
	DropNonMonotonic = "non-monotonic timestamp"
	DropOffScreen    = "coordinates out of range"
	DropShortAction  = "action with too few points"
)
