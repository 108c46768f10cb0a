"""Modeling: training as a short list of named steps, and the pieces each step uses."""
