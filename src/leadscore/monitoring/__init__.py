"""Monitoring: drift, outcomes against the contract, sales feedback, and the verdict a scheduler acts on."""
