"""MPE scenarios: one module per scenario, each registering a `Scenario` subclass."""
