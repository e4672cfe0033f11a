# Tiny random-init VideoChat: a tiny LLaMA (BERT WordPiece vocabulary, offline). Nothing pretrained here, so the
# LLM trains (the full config freezes Vicuna, as VideoChat does).
_base_ = ["../_base_/tiny.py"]
model = dict(
    type="askanything",
    vision=dict(patch_size=16, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                initializer_range=0.02),
    qformer=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                 cross_attention_frequency=1),
    num_query_tokens=4,
    llm=dict(vocab_size=30522, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
             num_key_value_heads=2, max_position_embeddings=256),
    freeze_vision=True,
    freeze_llm=False,
)
