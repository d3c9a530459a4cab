"""Forecasting models: the torch-only serving net and its LightningModule wrapper."""
