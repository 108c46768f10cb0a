"""The Spark path: the declared features and batch scores of the single-machine path, computed inside a
Spark cluster (or ``local[*]``) for exports one process cannot hold.

One definition of every feature: Spark reads the tables, shuffles each lead together with its own
events and stage history into buckets (a hash of the lead id), and runs the single-machine engine
(``data.folders.engagement_from`` / ``labels_from``) on each bucket, handed over as Arrow tables
(``applyInArrow``); scores come from the same ``ModelBundle`` through ``mapInArrow``. Nothing is
collected to the driver. PySpark is an optional extra (``pip install 'leadscore[spark]'``); nothing
here imports it until a function is called.
"""
