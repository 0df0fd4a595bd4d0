// Package sigma loads Sigma detection rules (specification v2) and
// evaluates them over loupe's events with its own compiled evaluator.
//
// Load reads a rule directory recursively (.yml/.yaml; rule collections
// with action global/reset/repeat; correlation rules) into a Ruleset: an
// immutable, shared set of compiled rules. Every rule that cannot be used
// is listed in Ruleset.Problems with its reason — invalid (bad YAML, a
// broken detection) or unsupported (valid Sigma loupe does not evaluate,
// such as a PCRE-only regular expression, the deprecated v1 aggregation
// syntax or an expand placeholder with no configured values); none is
// dropped silently.
//
// Detection values support every Sigma v2 modifier (contains, startswith,
// endswith, all, re with i/m/s, base64, base64offset, utf16le/utf16be/
// utf16/wide, windash, cidr, exists, fieldref, gt/gte/lt/lte, cased,
// expand), wildcards with backslash escapes, and null; conditions support
// and/or/not, parentheses, "1 of"/"all of" with patterns and "them".
// Matching ignores case except with cased and re; encoded (base64) values
// are compared exactly.
//
// Field names are resolved once per rule and event family (Windows event
// logs in their JSON forms, Falco alerts, syslog/auditd text, other JSON
// such as cloud audit logs) to accessors over event.Event's typed fields,
// its data object or paths into the raw record; a user Mapping overrides
// the built-in table. A rule's logsource restricts the families, Windows
// channels and event ids it is tested on.
//
// Each stream evaluates the Ruleset through its own Engine, which holds the
// per-event scratch space and the bounded correlation state (event_count,
// value_count, temporal, temporal_ordered, with group-by and timespan; an
// LRU of groups per correlation). A count condition with only a lower
// bound fires as soon as a sliding window reaches it; one with an upper
// bound or neq is decided when the group's window closes (a later event
// past the timespan, eviction from the LRU, or Flush at the end of the
// stream). Rules are indexed by family, channel and
// event id, and a literal prefilter reaches a rule only when a literal its
// detection requires occurs in the event; evaluation does not allocate
// unless a rule matches. Matches become detect.Detection values with the
// rule's attribution, level as priority and ATT&CK tags resolved through
// package attack, so the reasoner turns them into findings.
package sigma
