package main

// wire builds the parts the process runs and adds them to the run group and the API options.
// Each part has its own wireX method, in the file of its part.
func (p *process) wire(ps parts) error {
	for _, w := range []struct {
		part string
		fn   func() error
	}{
		{"api", p.wireStore},
		{"collector", p.wireCollector},
	} {
		if ps[w.part] {
			if err := w.fn(); err != nil {
				return err
			}
		}
	}
	return nil
}

// reload is called on SIGHUP.
func (p *process) reload() {}

// wireCollector adds the CloudWatch collector (filled in by the collector).
func (p *process) wireCollector() error { return nil }
