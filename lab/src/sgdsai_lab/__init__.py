"""Experiments that test the paper's claims at CPU scale: tasks, optimizers, training, sweeps, reports.

Every run writes one JSON record under ``experiments/records/``; tables and plots are made from the
records alone. Heavy dependencies (transformers, matplotlib, scikit-learn) are imported lazily.
"""
