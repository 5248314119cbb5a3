package guard

// window keeps the last size events of one kind and hands out a full window every hop events,
// oldest first, in a buffer it reuses: scoring a window allocates nothing.
type window[T any] struct {
	ring      []T
	next      int // ring index the next event goes to
	n         int // events held, up to len(ring)
	sinceLast int // events since the last window was handed out
	hop       int
	out       []T
	losses
}

func newWindow[T any](size, hop, sustain int) window[T] {
	return window[T]{ring: make([]T, size), hop: hop, out: make([]T, size), losses: newLosses(size, hop, sustain)}
}

// push adds ev and returns a full window when one is due. The slice is valid until the next push.
func (w *window[T]) push(ev T) ([]T, bool) {
	w.ring[w.next] = ev
	w.charged[w.next] = 0
	w.next = (w.next + 1) % len(w.ring)
	if w.n < len(w.ring) {
		w.n++
	}
	w.events++
	w.sinceLast++
	if w.n < len(w.ring) || w.sinceLast < w.hop {
		return nil, false
	}
	w.sinceLast = 0
	k := copy(w.out, w.ring[w.next:])
	copy(w.out[k:], w.ring[:w.next])
	return w.out, true
}
