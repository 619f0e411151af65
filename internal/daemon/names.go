package daemon

import (
	"crypto/rand"
	"encoding/binary"
	"strconv"
)

// Generated container names are "adjective_noun", as docker users expect,
// from berth's own word lists (ships' and harbours' vocabulary). After a
// collision a number is appended.
var (
	nameAdjectives = []string{
		"amber", "ancient", "bold", "brave", "breezy", "bright", "calm", "clever", "cosy", "crisp",
		"daring", "deep", "eager", "early", "fair", "fast", "fearless", "gentle", "golden", "grand",
		"happy", "hardy", "hidden", "humble", "jolly", "keen", "kind", "lively", "loyal", "lucky",
		"mellow", "merry", "mighty", "misty", "modest", "nimble", "noble", "patient", "plucky", "proud",
		"quick", "quiet", "rapid", "salty", "serene", "sharp", "silent", "sleek", "smooth", "snug",
		"steady", "stormy", "sturdy", "sunny", "swift", "tidy", "trusty", "vivid", "wandering", "windy",
	}
	nameNouns = []string{
		"anchor", "bay", "beacon", "berth", "bilge", "boom", "bow", "breakwater", "buoy", "cabin",
		"capstan", "cargo", "channel", "compass", "cove", "crane", "current", "davit", "deck", "dock",
		"estuary", "ferry", "fjord", "galley", "gangway", "harbour", "hatch", "helm", "hull", "inlet",
		"jetty", "keel", "lagoon", "lighthouse", "mast", "mooring", "narrows", "oar", "pier", "pilot",
		"port", "quay", "reef", "rigging", "rudder", "sail", "schooner", "shoal", "sloop", "sound",
		"spar", "starboard", "stern", "strait", "tide", "tugboat", "wake", "wharf", "winch", "yard",
	}
)

func generateName(attempt int) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	n := binary.LittleEndian.Uint64(b[:])
	name := nameAdjectives[n%uint64(len(nameAdjectives))] + "_" + nameNouns[(n/1000)%uint64(len(nameNouns))]
	if attempt > 0 {
		name += strconv.Itoa(int(n % 100))
	}
	return name
}
