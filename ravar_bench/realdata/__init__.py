"""From the released RefAVA files and AVA movies (or any video) to frames, detections, runs and a demo.

Library side of tools/prepare_refava.py, convert_refava.py, precompute_detections.py and demo.py;
the tools are thin argparse fronts over these functions so tests reach the logic directly.
"""
