# AskAnything / VideoChat-13B (Li et al. 2023): frozen BLIP-2 EVA ViT-g/14 + Q-Former (32 queries; transformers'
# Blip2VisionConfig() / Blip2QFormerConfig() defaults), llama_proj, frozen Vicuna-13B (LLaMA-13B architecture:
# width 5120, 40 layers, 40 heads, FFN 13824, vocab 32000). Weights only from local folders:
# model.blip2_pretrained=<Blip2Model save_pretrained folder>, model.llm_pretrained=<Vicuna-13B HF folder with
# its tokenizer>; nothing is downloaded.
_base_ = ["../_base_/full.py"]
model = dict(
    type="askanything",
    vision=dict(),
    qformer=dict(),
    num_query_tokens=32,
    llm=dict(vocab_size=32000, hidden_size=5120, intermediate_size=13824, num_hidden_layers=40,
             num_attention_heads=40, num_key_value_heads=40, max_position_embeddings=2048, rms_norm_eps=1e-6),
    freeze_vision=True,
    freeze_llm=True,
    blip2_pretrained=None,
    llm_pretrained=None,
    llm_tokenizer=None,
)
