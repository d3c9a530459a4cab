"""Serving side: archive a trained run for TorchServe, run the server, query it, benchmark it."""
