"""Offline multi-agent RL learners (BC, IQL+CQL, IQL+BCQ, MAICQ, MATD3+BC, OMAR)."""
