"""The composition root: config schema, registry, building stages, choosing the task, the command line. The only package that imports all others."""
