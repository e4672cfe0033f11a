"""Training / evaluation engine: the only place that loops over batches."""
