package models

// ReferenceScore exposes referenceScore to the external tests, which score windows of the real
// feature sets (package models/keystroke imports this package, so only models_test can use it).
var ReferenceScore = referenceScore
