package verify

// Verdict is what policy decided about an artifact.
type Verdict string

// The verdicts. Quarantine holds an artifact until an admin releases it;
// Deny refuses it outright.
const (
	Allow      Verdict = "allow"
	Quarantine Verdict = "quarantine"
	Deny       Verdict = "deny"
)

// Finding is one piece of evidence from one check. Evidence holds the data
// behind the message (expected and actual digest, record id…) so that an
// admin can judge it without re-running the check.
type Finding struct {
	Check    string            `json:"check"`
	Message  string            `json:"message"`
	Evidence map[string]string `json:"evidence,omitempty"`
}

// Decision is the outcome of verifying one artifact.
type Decision struct {
	Verdict  Verdict   `json:"verdict"`
	Findings []Finding `json:"findings,omitempty"`
}

// Summary is the first finding's message, or the verdict when there is none.
func (d Decision) Summary() string {
	if len(d.Findings) > 0 {
		return d.Findings[0].Message
	}
	return string(d.Verdict)
}
