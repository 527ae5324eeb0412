"""`pipeline soak`: the whole local pipeline under faults, checked against the oracle (issue 13)."""
