package behaviour

import (
	"math"

	"github.com/vigilauth/vigil/guard"
	"github.com/vigilauth/vigil/models/keystroke"
)

// Corrections (backspace, delete and the arrow keys) are typing that is not the text: a burst of
// them, a word retyped, a cursor moved back, makes a window unlike the owner's enrolment
// whoever types it. Replayed through the guard, most of the genuine sessions' challenges came
// from such bursts (9 of the 11 of the first 100 Aalto participants at epsilon 8, seed 1), and
// the anomaly the models give a window with many corrections overstates how likely it is to be
// someone else's: of the owner's windows with 12 or more corrections in 50 keystrokes 9.5%
// scored above 0.9, of those without any 0.09%, while another person's windows scored above 0.9
// about as often either way (78-84%).
//
// So the scorer recalibrates each keystroke window's anomaly by its corrections: the anomaly's
// log-odds move down by editEvidence for each correction beyond the typical share editShare of
// the window's keystrokes (up for each one short of it), so that a window with the typical share
// keeps its anomaly, one with more weighs less against the owner and one with fewer weighs
// more. editEvidence is the coefficient of the correction count in a logistic regression of
// "someone else's window" on the log-odds of the models' anomaly (coefficient 1) and the count
// centred at editShare, with the owners' windows and other people's weighted equally; editShare
// is the share of corrections in the same windows. Both come from the first 100 Aalto
// participants alone, typing held out from enrolment, at epsilon 8 with seed 1: 8,681 of the
// owners' windows and 86,969 of other participants' (ten per owner), every 5 keystrokes. Replayed
// through the guard (vigil eval takeover --users 100 --epsilon 8), the owners' challenges went
// from 0.262 to 0.200 per 1,000 keystrokes over seeds 1-5 (0.270 to 0.229 over seeds 6-10),
// missed takeovers from 3.08% to 2.88% (2.44% to 2.08%), and the median keystrokes to a
// challenge from 42.2 to 42.4 (41.2 to 41.6). Checked once on the other 400 participants
// (--skip 100 --epsilon 8, seeds 1-5): 0.373, 0.389, 0.341, 0.452, 0.420 challenges per 1,000
// keystrokes (mean 0.395; 0.412 before), 1.10-1.45% missed (mean 1.22%; 1.38%), median 40-42
// (41-43).
const (
	// editEvidence is the change in the anomaly's log-odds per correction.
	editEvidence = 0.14
	// editShare is the typical share of corrections among keystrokes.
	editShare = 0.062
)

// codeDelete is the browser key code of the delete key.
const codeDelete = 46

// isCorrection reports whether key is a correction: backspace, delete or an arrow key.
func isCorrection(key uint16) bool {
	return key == keystroke.CodeBackspace || key == codeDelete || key >= 37 && key <= 40
}

// editCalibrated returns the anomaly a of a window of keystrokes recalibrated by the window's
// corrections (see editEvidence). It keeps 0 and 1, and it is monotone in a.
func editCalibrated(a float64, window []guard.KeystrokeEvent) float64 {
	var edits int
	for i := range window {
		if isCorrection(window[i].Key) {
			edits++
		}
	}
	d := editEvidence * (float64(edits) - editShare*float64(len(window)))
	// a/(a + (1-a)e^d) is the logistic of logit(a) - d, without the infinities of the
	// logit at 0 and 1.
	return a / (a + (1-a)*math.Exp(d))
}
