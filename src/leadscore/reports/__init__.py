"""Reports: plots for MLflow and HTML for people."""
