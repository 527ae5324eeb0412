"""``pipeline plan``: shards, event source settings, capacity units and monthly cost from measured figures.

``limits`` holds AWS's documented limits, ``inputs`` loads the measured figures and the prices (both
dated files under ``tools/plan/data/``), ``planner`` sizes a deployment, ``cost`` prices it next to the
seed-style design, ``simulate`` checks the planner's iterator age and throughput with a discrete-event
simulation, ``render`` prints. Nothing here runs in Lambda.
"""
