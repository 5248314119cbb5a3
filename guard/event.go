package guard

import (
	"fmt"
	"math"
	"net/netip"
	"time"
)

// KeystrokeEvent is one key press and release.
type KeystrokeEvent struct {
	Session string
	Press   time.Time
	Release time.Time
	// Key is the key code, as JavaScript's KeyboardEvent.keyCode numbers keys (the Aalto data
	// set records these). Zero means unknown and is rejected.
	Key uint16
}

// MouseButton names the button a mouse event involves.
type MouseButton uint8

// Mouse buttons, as the Balabit data set names them.
const (
	ButtonNone MouseButton = iota + 1
	ButtonLeft
	ButtonRight
	ButtonMiddle
	ButtonScroll
	ButtonOther
)

// MouseAction names what a mouse event is.
type MouseAction uint8

// Mouse actions, as the Balabit data set names them.
const (
	ActionMove MouseAction = iota + 1
	ActionPress
	ActionRelease
	ActionDrag
	ActionScrollDown
	ActionScrollUp
)

// MouseEvent is one mouse movement, click or scroll.
type MouseEvent struct {
	Session string
	At      time.Time
	X, Y    int32 // pixels
	Button  MouseButton
	Action  MouseAction
}

// ContextEvent describes where and on what a session is being used.
type ContextEvent struct {
	Session string
	// IP is the address the session is seen from.
	IP netip.Addr
	// Lat and Lon locate the session in degrees (WGS 84), from GPS or IP geolocation.
	// Exactly (0, 0) is treated as missing: it is where failed IP geolocation lands.
	Lat, Lon float64
	// AccuracyKm is the radius of uncertainty of the location; 0 means
	// ContextConfig.DefaultAccuracyKm (IP geolocation is typically good to tens of km).
	AccuracyKm float64
	// DeviceFingerprint identifies the device; Network the network (for example a hash of the
	// SSID or the autonomous system and prefix). Both are opaque to the guard.
	DeviceFingerprint string
	Network           string
	// LocalTime is when the context was observed, on the wall clock at the user's location
	// (time zone included): it is the event's time, and its weekday and hour place it in the
	// user's hour-of-week rhythm.
	LocalTime time.Time
}

func invalid(kind, session, format string, args ...any) error {
	return fmt.Errorf("%w: %s event (session %q): %s", ErrInvalidEvent, kind, session, fmt.Sprintf(format, args...))
}

func checkID(kind, what, id string) error {
	if id == "" {
		return invalid(kind, id, "missing %s", what)
	}
	if len(id) > MaxIDBytes {
		return invalid(kind, id[:16]+"...", "%s of %d bytes, limit %d", what, len(id), MaxIDBytes)
	}
	return nil
}

// checkEventTime rejects zero and absurd timestamps; the session checks order.
func checkEventTime(kind, session, field string, t time.Time) error {
	if t.IsZero() {
		return invalid(kind, session, "missing %s", field)
	}
	if t.Before(minEventTime) || t.After(maxEventTime) {
		return fmt.Errorf("%w: %s event (session %q): %s %s is outside %d..%d",
			ErrBadTime, kind, session, field, t.Format(time.RFC3339), minEventTime.Year(), maxEventTime.Year())
	}
	return nil
}

func (ev *KeystrokeEvent) validate() error {
	const kind = "keystroke"
	if err := checkID(kind, "session", ev.Session); err != nil {
		return err
	}
	if err := checkEventTime(kind, ev.Session, "press time", ev.Press); err != nil {
		return err
	}
	if err := checkEventTime(kind, ev.Session, "release time", ev.Release); err != nil {
		return err
	}
	if hold := ev.Release.Sub(ev.Press); hold < 0 || hold > MaxKeyHold {
		return fmt.Errorf("%w: keystroke event (session %q): key held for %v, want 0..%v", ErrBadTime, ev.Session, hold, MaxKeyHold)
	}
	if ev.Key == 0 {
		return invalid(kind, ev.Session, "missing key code")
	}
	return nil
}

func (ev *MouseEvent) validate() error {
	const kind = "mouse"
	if err := checkID(kind, "session", ev.Session); err != nil {
		return err
	}
	if err := checkEventTime(kind, ev.Session, "time", ev.At); err != nil {
		return err
	}
	if abs32(ev.X) > MaxMouseCoordinate || abs32(ev.Y) > MaxMouseCoordinate {
		return invalid(kind, ev.Session, "position (%d, %d) beyond ±%d pixels", ev.X, ev.Y, MaxMouseCoordinate)
	}
	if ev.Button < ButtonNone || ev.Button > ButtonOther {
		return invalid(kind, ev.Session, "unknown button %d", ev.Button)
	}
	if ev.Action < ActionMove || ev.Action > ActionScrollUp {
		return invalid(kind, ev.Session, "unknown action %d", ev.Action)
	}
	return nil
}

func abs32(v int32) int64 {
	if x := int64(v); x >= 0 {
		return x
	}
	return -int64(v)
}

func (ev *ContextEvent) validate() error {
	const kind = "context"
	if err := checkID(kind, "session", ev.Session); err != nil {
		return err
	}
	if err := checkEventTime(kind, ev.Session, "local time", ev.LocalTime); err != nil {
		return err
	}
	if !ev.IP.IsValid() || ev.IP.IsUnspecified() {
		return invalid(kind, ev.Session, "missing IP address")
	}
	if math.IsNaN(ev.Lat) || math.IsNaN(ev.Lon) || ev.Lat < -90 || ev.Lat > 90 || ev.Lon < -180 || ev.Lon > 180 {
		return invalid(kind, ev.Session, "coordinates (%v, %v) outside latitude [-90, 90], longitude [-180, 180]", ev.Lat, ev.Lon)
	}
	if ev.Lat == 0 && ev.Lon == 0 {
		return invalid(kind, ev.Session, "missing location: (0, 0) is where failed IP geolocation lands")
	}
	if math.IsNaN(ev.AccuracyKm) || ev.AccuracyKm < 0 || ev.AccuracyKm > MaxAccuracyKm {
		return invalid(kind, ev.Session, "location accuracy %v km outside 0..%d", ev.AccuracyKm, MaxAccuracyKm)
	}
	if ev.DeviceFingerprint == "" || len(ev.DeviceFingerprint) > MaxFingerprintBytes {
		return invalid(kind, ev.Session, "device fingerprint must be 1..%d bytes, got %d", MaxFingerprintBytes, len(ev.DeviceFingerprint))
	}
	if ev.Network == "" || len(ev.Network) > MaxNetworkBytes {
		return invalid(kind, ev.Session, "network must be 1..%d bytes, got %d", MaxNetworkBytes, len(ev.Network))
	}
	return nil
}

// checkScore validates a behaviour score, from a scorer or from ObserveBehaviour.
func checkScore(session string, s BehaviourScore) error {
	const kind = "behaviour"
	if !(s.Anomaly >= 0 && s.Anomaly <= 1) {
		return invalid(kind, session, "anomaly %v outside [0, 1]", s.Anomaly)
	}
	if len(s.Deviations) > MaxDeviations {
		return invalid(kind, session, "%d deviations, limit %d", len(s.Deviations), MaxDeviations)
	}
	for i, d := range s.Deviations {
		if d.Feature == "" || len(d.Feature) > MaxFeatureBytes {
			return invalid(kind, session, "deviation %d: feature name must be 1..%d bytes", i, MaxFeatureBytes)
		}
		if !finite(d.Z) || !finite(d.Value) || !finite(d.Baseline) {
			return invalid(kind, session, "deviation %d (%s): z %v, value %v, baseline %v must be finite", i, d.Feature, d.Z, d.Value, d.Baseline)
		}
		if len(d.Unit) > MaxUnitBytes {
			return invalid(kind, session, "deviation %d (%s): unit of %d bytes, limit %d", i, d.Feature, len(d.Unit), MaxUnitBytes)
		}
	}
	return nil
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
