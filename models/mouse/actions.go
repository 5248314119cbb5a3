package mouse

import (
	"fmt"
	"time"
)

// ActionType is what a mouse action did.
type ActionType uint8

// Action types, following Ahmed and Traore (2007) and Antal and Egyed-Zsigmond (2019).
const (
	// MoveAction is a movement that ends without a click: the pointer stopped (a pause), or a
	// scroll, or a press that starts a drag.
	MoveAction ActionType = iota
	// PointClick is a movement that ends in a click, with the click.
	PointClick
	// DragDrop is a press, a movement with the button held, and the release.
	DragDrop
	// NumActionTypes is the number of action types.
	NumActionTypes
)

func (t ActionType) String() string {
	switch t {
	case MoveAction:
		return "move"
	case PointClick:
		return "point-and-click"
	case DragDrop:
		return "drag-and-drop"
	}
	return "unknown action"
}

// Action is one mouse action: its type and its pointer positions in time order. For a click or
// a drag, Press and Release are when the button went down and up; they are zero for a move.
type Action struct {
	Type           ActionType
	Points         []Event
	Press, Release time.Duration
}

// SegmentConfig sets where one action ends and the next begins. The zero value gives the
// defaults.
type SegmentConfig struct {
	// Pause is the longest gap between events inside one action (default 2 s): a longer still
	// pointer ends a movement.
	Pause time.Duration
	// MinPoints is the fewest positions an action needs to have a shape (default 6); shorter
	// actions are dropped and counted.
	MinPoints int
}

// WithDefaults returns c with every unset field at its default, or an error naming the setting
// out of range.
func (c SegmentConfig) WithDefaults() (SegmentConfig, error) {
	err := c.validate()
	return c, err
}

func (c *SegmentConfig) validate() error {
	if c.Pause == 0 {
		c.Pause = 2 * time.Second
	}
	if c.MinPoints == 0 {
		c.MinPoints = 6
	}
	if c.Pause < 0 || c.MinPoints < 2 {
		return fmt.Errorf("mouse: segmentation pause %v or minimum points %d out of range", c.Pause, c.MinPoints)
	}
	return nil
}

// Segment splits a session's events (in time order) into actions. Scroll events end a movement
// and are not part of any action; a release without a press is ignored. The actions' Points
// share events' backing array. dropped counts actions left out for having too few points.
func Segment(events []Event, cfg SegmentConfig) (actions []Action, dropped int, err error) {
	return AppendSegments(nil, events, cfg)
}

// AppendSegments is Segment appending to dst, for a live path that reuses one buffer: it
// allocates nothing when dst has room.
func AppendSegments(dst []Action, events []Event, cfg SegmentConfig) (actions []Action, dropped int, err error) {
	if err := cfg.validate(); err != nil {
		return dst, 0, err
	}
	actions = dst
	start := 0 // first event of the current action
	pressed := false
	var press time.Duration
	dragged := false
	emit := func(t ActionType, end int, pr, rel time.Duration) {
		pts := events[start:end:end]
		if len(pts) < cfg.MinPoints {
			dropped++
		} else {
			actions = append(actions, Action{Type: t, Points: pts, Press: pr, Release: rel})
		}
		start = end
	}
	for i, e := range events {
		if i > start && !pressed && e.T-events[i-1].T > cfg.Pause {
			emit(MoveAction, i, 0, 0)
		}
		switch {
		case e.Button == Scroll || e.State == Down || e.State == Up:
			if !pressed && i > start {
				emit(MoveAction, i, 0, 0)
			}
			start = i + 1
		case e.State == Pressed:
			if pressed { // a second button went down: keep the first press
				continue
			}
			pressed, press, dragged = true, e.T, false
		case e.State == Drag:
			if pressed && !dragged {
				// The movement before the press was its own action; the drag starts at the press.
				dragged = true
				if p := pressIndex(events, start, i); p > start {
					emit(MoveAction, p, 0, 0)
				}
			}
		case e.State == Released:
			if !pressed {
				start = i + 1
				continue
			}
			t := PointClick
			if dragged {
				t = DragDrop
			}
			emit(t, i+1, press, e.T)
			pressed = false
		}
	}
	if !pressed && len(events) > start {
		emit(MoveAction, len(events), 0, 0)
	}
	return actions, dropped, nil
}

// pressIndex finds the Pressed event in events[from:to].
func pressIndex(events []Event, from, to int) int {
	for i := to - 1; i >= from; i-- {
		if events[i].State == Pressed {
			return i
		}
	}
	return from
}
