package updater

// Every bound of the package, in one place.
const (
	// maxShadowWindows bounds Config.ShadowWindows.
	maxShadowWindows = 1 << 20
	// maxRejected is how many rejected versions the state remembers (for Status; the newest
	// accepted version alone already keeps them from being fetched again).
	maxRejected = 16
	// maxStateBytes bounds state.json and root.json.
	maxStateBytes = 1 << 20
)
