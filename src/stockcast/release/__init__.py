"""Operating the served model without restarts: retrain and deploy, status, rollback (scripts/admin.py)."""
