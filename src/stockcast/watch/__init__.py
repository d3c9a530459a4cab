"""Watching what was served: refresh the price caches, recompute the track record, monitor drift, publish
the figures, replay the loop over past days (scripts/admin.py). It reads `stockcast.release` (the deploy
history, the lock, the gate) and changes what is served only through a retrain."""
