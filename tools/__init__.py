"""Development tools: the CLI, the local runtime, the reference workload, fault injection, the oracle,
the in-memory stores and the verification. Never in a Lambda package, and never imported by ``pipeline``."""
