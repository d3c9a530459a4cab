"""Serving side: archive a trained run for TorchServe, run the server, talk to its APIs."""
