# BERT-base (frozen) as in the paper. No weights ship offline: set text_encoder.path to a local folder
# holding config.json, vocab.txt and the weights (e.g. --cfg-options text_encoder.path=/models/bert-base-uncased).
text_encoder = dict(type="bert", dim=768, max_len=64, path=None)
