"""Data: AVA classes, the RefAVA loader, frames, detections cache, the synthetic generator, the clip dataset.
Never imports models, encoders or the engine."""
