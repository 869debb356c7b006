"""Offline evaluation: ranking metrics (``ranking``), shared by the ALS step and the later report."""
