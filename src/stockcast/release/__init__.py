"""Changing what is served, without restarts: retrain and deploy, rollback, remove, status, each a journaled
command under one lock (scripts/admin.py). Nothing here imports `stockcast.watch`."""
