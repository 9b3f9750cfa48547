"""Sweeps (parent and child runs, the Optuna search space, best-trial presets) and the leaderboard."""
