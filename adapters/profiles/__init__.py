"""Export profile adapters: one module per profile, each writing one bundle kind's payload."""
