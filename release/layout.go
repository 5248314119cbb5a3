package release

import "strconv"

// Store keys of the published documents (see the package doc).

// RootKey is where root version v is stored.
func RootKey(v uint64) string { return "root/" + strconv.FormatUint(v, 10) + ".root.json" }

// ReleasePrefix is the prefix of every object of model.
func ReleasePrefix(model string) string { return "releases/" + model + "/" }

// LatestKey is where the Latest pointer of model is stored.
func LatestKey(model string) string { return ReleasePrefix(model) + "latest.json" }

// ManifestKey is where the manifest of model version v is stored.
func ManifestKey(model string, v uint64) string {
	return ReleasePrefix(model) + strconv.FormatUint(v, 10) + "/manifest.json"
}

// ArtifactKey is where artifact name of model version v is stored.
func ArtifactKey(model string, v uint64, name string) string {
	return ReleasePrefix(model) + strconv.FormatUint(v, 10) + "/artifacts/" + name
}

// KeyEpochKey is where the KeyEpoch document of epoch e is stored.
func KeyEpochKey(e uint64) string { return "keyepochs/" + strconv.FormatUint(e, 10) + ".json" }

// CollectiveKeyKey is where the collective HE public key of epoch e is stored.
func CollectiveKeyKey(e uint64) string {
	return "keyepochs/" + strconv.FormatUint(e, 10) + "/collective.pk"
}
