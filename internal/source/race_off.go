//go:build !race

package source

// raceBuild reports a build with the race detector.
const raceBuild = false
