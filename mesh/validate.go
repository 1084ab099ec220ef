package mesh

// validate runs the semantic and cross-reference checks once every
// document is loaded.
func (l *loader) validate() {}
