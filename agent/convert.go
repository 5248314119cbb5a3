package agent

import (
	"fmt"
	"math"
	"net/netip"
	"time"

	"github.com/vigilauth/vigil/guard"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// msTime converts milliseconds since the epoch (fractional) to a time, rejecting what cannot
// be a time of an event. The field is named only for an error: a batch's events are
// converted without building a string for each.
func msTime(field func() string, ms float64) (time.Time, error) {
	const lo, hi = 946684800000.0, 7258118400000.0 // 2000-01-01 .. 2200-01-01
	if math.IsNaN(ms) || ms < lo || ms > hi {
		return time.Time{}, badField(field(), "%v is not a time in milliseconds since the Unix epoch between 2000 and 2200", ms)
	}
	sec, frac := math.Modf(ms / 1000)
	return time.Unix(int64(sec), int64(math.Round(frac*1e9))), nil
}

func unixMs(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

var buttons = map[string]guard.MouseButton{"none": guard.ButtonNone, "left": guard.ButtonLeft, "right": guard.ButtonRight,
	"middle": guard.ButtonMiddle, "scroll": guard.ButtonScroll, "other": guard.ButtonOther}

var actions = map[string]guard.MouseAction{"move": guard.ActionMove, "press": guard.ActionPress, "release": guard.ActionRelease,
	"drag": guard.ActionDrag, "scroll_down": guard.ActionScrollDown, "scroll_up": guard.ActionScrollUp}

// event is one input event of a batch, converted and checked, to be applied in time order.
type event struct {
	at    time.Time
	index int // of the request field it came from (keys[index], pointer[index]), for errors
	key   *guard.KeystrokeEvent
	mouse *guard.MouseEvent
	cx    *guard.ContextEvent
}

// field names the request field the event came from.
func (ev *event) field() string {
	switch {
	case ev.key != nil:
		return fmt.Sprintf("keys[%d]", ev.index)
	case ev.mouse != nil:
		return fmt.Sprintf("pointer[%d]", ev.index)
	}
	return "context"
}

// convertBatch checks every field of a batch and converts it to guard events; the first bad
// field is the error.
func convertBatch(req *vigilv1.SendEventsRequest) ([]event, error) {
	out := make([]event, 0, len(req.Keys)+len(req.Pointer)+1)
	// The events live in two slices allocated once per batch, not one allocation each.
	keys := make([]guard.KeystrokeEvent, len(req.Keys))
	mice := make([]guard.MouseEvent, len(req.Pointer))
	for i, k := range req.Keys {
		f := func(suffix string) func() string {
			return func() string { return fmt.Sprintf("keys[%d]%s", i, suffix) }
		}
		press, err := msTime(f(".press_ms"), k.PressMs)
		if err != nil {
			return nil, err
		}
		release, err := msTime(f(".release_ms"), k.ReleaseMs)
		if err != nil {
			return nil, err
		}
		if hold := release.Sub(press); hold < 0 || hold > guard.MaxKeyHold {
			return nil, badField(f(".release_ms")(), "key held for %v, want 0..%v after press_ms", hold, guard.MaxKeyHold)
		}
		if k.Code == 0 || k.Code > 1023 {
			return nil, badField(f(".code")(), "key code %d, want 1..1023 (a JavaScript keyCode)", k.Code)
		}
		keys[i] = guard.KeystrokeEvent{Session: req.Session, Press: press, Release: release, Key: uint16(k.Code)}
		out = append(out, event{at: press, index: i, key: &keys[i]})
	}
	for i, p := range req.Pointer {
		f := func() string { return fmt.Sprintf("pointer[%d]", i) }
		at, err := msTime(func() string { return f() + ".at_ms" }, p.AtMs)
		if err != nil {
			return nil, err
		}
		b, ok := buttons[p.Button]
		if !ok {
			return nil, badField(f()+".button", "%q, want none, left, right, middle, scroll or other", p.Button)
		}
		act, ok := actions[p.Action]
		if !ok {
			return nil, badField(f()+".action", "%q, want move, press, release, drag, scroll_down or scroll_up", p.Action)
		}
		if abs(p.X) > guard.MaxMouseCoordinate || abs(p.Y) > guard.MaxMouseCoordinate {
			return nil, badField(f(), "position (%d, %d) beyond ±%d pixels", p.X, p.Y, guard.MaxMouseCoordinate)
		}
		mice[i] = guard.MouseEvent{Session: req.Session, At: at, X: p.X, Y: p.Y, Button: b, Action: act}
		out = append(out, event{at: at, index: i, mouse: &mice[i]})
	}
	if c := req.Context; c != nil {
		ip, err := netip.ParseAddr(c.Ip)
		if err != nil || ip.IsUnspecified() {
			return nil, badField("context.ip", "%q is not an IP address", c.Ip)
		}
		lt, err := time.Parse(time.RFC3339Nano, c.LocalTime)
		if err != nil {
			return nil, badField("context.local_time", "%q is not an RFC 3339 time with offset", c.LocalTime)
		}
		if y := lt.Year(); y < 2000 || y >= 2200 {
			// As for the keys' and pointer's times: a clock that far off is not a user's.
			return nil, badField("context.local_time", "%q is not a time between 2000 and 2200", c.LocalTime)
		}
		// The guard's own checks (ContextEvent), made here to name the field.
		if !(c.Lat >= -90 && c.Lat <= 90) {
			return nil, badField("context.lat", "%v is not a latitude in [-90, 90]", c.Lat)
		}
		if !(c.Lon >= -180 && c.Lon <= 180) {
			return nil, badField("context.lon", "%v is not a longitude in [-180, 180]", c.Lon)
		}
		if c.Lat == 0 && c.Lon == 0 {
			return nil, badField("context.lat", "missing location: (0, 0) is where failed IP geolocation lands")
		}
		if !(c.AccuracyKm >= 0 && c.AccuracyKm <= guard.MaxAccuracyKm) {
			return nil, badField("context.accuracy_km", "%v km outside 0..%d", c.AccuracyKm, guard.MaxAccuracyKm)
		}
		if c.Device == "" || len(c.Device) > guard.MaxFingerprintBytes {
			return nil, badField("context.device", "%d bytes, want 1..%d", len(c.Device), guard.MaxFingerprintBytes)
		}
		if c.Network == "" || len(c.Network) > guard.MaxNetworkBytes {
			return nil, badField("context.network", "%d bytes, want 1..%d", len(c.Network), guard.MaxNetworkBytes)
		}
		out = append(out, event{at: lt, cx: &guard.ContextEvent{Session: req.Session, IP: ip, Lat: c.Lat, Lon: c.Lon,
			AccuracyKm: c.AccuracyKm, DeviceFingerprint: c.Device, Network: c.Network, LocalTime: lt}})
	}
	return out, nil
}

func abs(v int32) int64 {
	if v < 0 {
		return -int64(v)
	}
	return int64(v)
}

func reasons(rs []guard.Reason) []*vigilv1.TrustReason {
	out := make([]*vigilv1.TrustReason, len(rs))
	for i, r := range rs {
		out[i] = &vigilv1.TrustReason{Signal: r.Signal.String(), Impact: r.Impact, Text: r.Text}
	}
	return out
}

func challenge(c guard.Challenge) *vigilv1.AgentChallenge {
	if !c.Open() {
		return nil
	}
	return &vigilv1.AgentChallenge{Id: c.ID, Tier: c.Tier.String(), DeadlineUnixMs: unixMs(c.Deadline)}
}

func statusMsg(st guard.Status) *vigilv1.SessionStatus {
	return &vigilv1.SessionStatus{Session: st.Session, User: st.User, Trust: st.Trust, Tier: st.Tier.String(), Revoked: st.Revoked,
		Challenge: challenge(st.Challenge), Reasons: reasons(st.Reasons), UpdatedUnixMs: unixMs(st.Updated)}
}

func decisionMsg(d *guard.Decision) *vigilv1.AuthorizeResponse {
	return &vigilv1.AuthorizeResponse{Allow: d.Allow, Outcome: d.Outcome.String(), Tier: d.Tier.String(), Trust: d.Trust,
		Required: d.Required, Challenge: challenge(d.Challenge), Reasons: reasons(d.Reasons), Explanation: d.Explain()}
}
