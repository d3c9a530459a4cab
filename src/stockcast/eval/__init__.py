"""Walk-forward evaluation of a trained run against baselines."""
