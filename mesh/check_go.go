package mesh

// ValidateCheck checks a Check built in Go against m exactly as a Check
// document of a bundle is checked (workloads exist, the URL and TLS
// settings make sense, the expectation uses the vocabulary); problems name
// the check and the field as a bundle's would.
func (m *Mesh) ValidateCheck(c *Check) error {
	l := &loader{m: m}
	var probs []Problem
	l.validateCheck(c, func(field, msg string) {
		probs = append(probs, Problem{Source: c.Source, Kind: "Check", Name: c.Namespace + "/" + c.Name, Field: field, Message: msg})
	})
	if len(probs) > 0 {
		return &ValidationError{Problems: probs}
	}
	return nil
}
