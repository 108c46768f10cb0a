"""Jobs: the whole paths people run (train and log, monitor and report, the demo, notebook helpers)."""
