"""Training: LightGBM with baselines, calibration, cutoff from the contract, leakage guard."""
