"""Past one machine, on Ray (the optional ``edgeforge[ray]`` extra): connecting and checking the nodes
(``cluster``), batch prediction with Ray Data (``predict``), drift over a whole dataset (``drift``), and a
loopback cluster on one machine for tests and the scaling benchmark (``local_cluster``); the device farm is a
benchmark mode (``edgeforge.benchmarks.farm``). Nothing here is imported unless ``--ray`` is given: without
it everything stays local and Ray is never imported."""
