"""Loading models: one resolver for every model spec, the trained Policy, tiny random models."""
