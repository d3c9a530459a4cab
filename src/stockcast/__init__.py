"""stockcast: daily stock prices in, served multi-day forecasts out."""
