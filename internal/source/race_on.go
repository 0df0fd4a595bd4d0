//go:build race

package source

// raceBuild: the race detector reserves address space an address-space
// limit would deny, so race-enabled workers rely on the heap watchdog.
const raceBuild = true
