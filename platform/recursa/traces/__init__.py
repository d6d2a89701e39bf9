"""Agent traces and the rewards computed from them: trace models, collector, store (SQLite or
PostgreSQL), dataset export, terminal labeller, reward functions and engine, learned reward,
component rewards for decision agents, and the sandbox for model-written code."""
