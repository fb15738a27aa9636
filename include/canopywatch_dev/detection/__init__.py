"""Detection evaluation on simulated scenes: scenarios, training tables, comparison methods
and the simulator's truth as reference data (``python -m canopywatch_dev.detection``)."""
