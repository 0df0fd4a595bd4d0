package reason

import "github.com/loupe-sec/loupe/internal/attack"

// questions maps each ATT&CK Enterprise tactic id to the DFIQ-style
// investigative question a finding of that tactic answers.
var questions = map[string]string{
	"TA0043": "What did the attacker learn about the organisation before the intrusion?", // Reconnaissance
	"TA0042": "What infrastructure or capabilities did the attacker prepare?",            // Resource Development
	"TA0001": "What is the initial access vector?",
	"TA0002": "What was executed on the compromised systems?",
	"TA0003": "What is the persistence mechanism?",
	"TA0004": "How did the attacker escalate privileges?",
	"TA0005": "How did the attacker try to evade detection?",
	"TA0006": "Which credentials were accessed or stolen, and how?",
	"TA0007": "What did the attacker try to learn about the environment?",
	"TA0008": "How did the attacker move laterally?",
	"TA0009": "What data was collected?",
	"TA0011": "How does the attacker communicate with compromised systems?",
	"TA0010": "Was data exfiltrated, and how?",
	"TA0040": "What impact did the attacker have on systems or data?",
}

// FallbackQuestion is asked for detections without a known ATT&CK tactic.
const FallbackQuestion = "What suspicious activity was observed?"

// Question returns the investigative question for an ATT&CK tactic, given
// in any form attack.TacticByName accepts ("Credential Access",
// "credential-access", "TA0006"). Unknown tactics get FallbackQuestion.
func Question(tactic string) string {
	if t, ok := attack.TacticByName(tactic); ok {
		if q, ok := questions[t.ID]; ok {
			return q
		}
	}
	return FallbackQuestion
}
