"""Studies: declarative sweeps (TOML), the planner, the durable run store, executors (local
processes, Ray), and fitting a study's laws straight from its store."""
