"""e19: the image-text contrastive pretext of the CLIP, BLIP-2 and Singularity families (ravar_bench/pretraining/):
the loss agrees with open_clip's own CLIP loss, captions that repeat are positives, the captions never refer, and
every family's pair trains both its visual and its text tower."""
import pytest
import torch

from ravar_bench.config import load_config
from ravar_bench.data import synthetic
from ravar_bench.factory import model_kwargs
from ravar_bench.pretraining import run as P
from ravar_bench.pretraining.corpus import CAPTION_TEMPLATES, caption_of, caption_table
from ravar_bench.pretraining.pretext import CONTRASTIVE, caption_retrieval, contrastive_loss
from ravar_bench.registry import METHODS, resolve_methods

# the part of each family's pair that only the text side reads, and one that only the visual side reads
TEXT_PART = {"clip4clip": "clip.transformer.", "xclip": "clip.transformer.", "mevtr": "clip.transformer.",
             "clip_sam": "selector.clip.transformer.", "clip_detr": "selector.clip.transformer.",
             "clip_refclip": "selector.clip.transformer.", "blipv2": "embeddings.word_embeddings",
             "refatomnet": "p_rt.", "askanything": "llm.", "singularity": "text_encoder."}
VISUAL_PART = {"clip4clip": "clip.visual.", "xclip": "clip.visual.", "mevtr": "clip.visual.",
               "clip_sam": "selector.clip.visual.", "clip_detr": "selector.clip.visual.",
               "clip_refclip": "selector.clip.visual.", "blipv2": "encoder.vision_model.",
               "refatomnet": "visual.vision_model.", "askanything": "encoder.vision_model.",
               "singularity": "vision_encoder."}


@pytest.fixture(autouse=True)
def _pair_on(monkeypatch):
    """The pair as e19 built it, whether or not the shipped default uses it (a weight of 0 turns it off)."""
    monkeypatch.setitem(CONTRASTIVE, "weight", 1.0)


def test_the_families_with_a_pair_are_the_clip_blip2_and_singularity_ones():
    have = {n for n in resolve_methods("all") if P.uses_pair(n)}
    assert have == set(TEXT_PART)


def test_with_distinct_captions_the_loss_is_open_clips_clip_loss():
    from open_clip.loss import ClipLoss

    g = torch.Generator().manual_seed(0)
    v, t = torch.randn(6, 16, generator=g), torch.randn(6, 16, generator=g)
    caps = [f"caption {i}" for i in range(6)]
    ref = ClipLoss()(torch.nn.functional.normalize(v, dim=-1), torch.nn.functional.normalize(t, dim=-1),
                     torch.tensor(1 / CONTRASTIVE["temperature"]))
    assert contrastive_loss(v, t, caps).item() == pytest.approx(ref.item(), rel=1e-5)


def test_clips_with_one_caption_are_positives_of_each_other():
    """Two clips with the same caption: swapping their text embeddings changes nothing (neither is the other's
    negative), while with distinct captions it does."""
    g = torch.Generator().manual_seed(1)
    v, t = torch.randn(4, 8, generator=g), torch.randn(4, 8, generator=g)
    swapped = t[[1, 0, 2, 3]]
    same = ["a", "a", "b", "c"]
    assert contrastive_loss(v, t, same).item() == pytest.approx(contrastive_loss(v, swapped, same).item(), rel=1e-6)
    distinct = ["a", "d", "b", "c"]
    assert abs(contrastive_loss(v, t, distinct).item() - contrastive_loss(v, swapped, distinct).item()) > 1e-3


def test_a_visual_with_alternatives_counts_its_best_match():
    """BLIP-2's ITC: (B, K, E) visual; the similarity is the best of the K."""
    t = torch.eye(3)
    v = torch.stack([torch.stack([-t[i], t[i]]) for i in range(3)])  # the matching query second
    r = caption_retrieval(v, t, ["x", "y", "z"])
    assert r == {"caption_R1": 100.0, "caption_R1_chance": pytest.approx(33.33)}
    r = caption_retrieval(v[:, :1], t, ["x", "y", "z"])  # only the anti-matching query
    assert r["caption_R1"] == 0.0


def test_captions_read_only_the_persons_own_fields_and_are_not_the_benchmarks_templates():
    for tpl in CAPTION_TEMPLATES:
        assert "{pos" not in tpl and "{size}" not in tpl
        assert tpl not in synthetic.TEMPLATES and tpl not in synthetic.HELDOUT_TEMPLATES
    f = dict(noun="woman", shirt="red", trousers="blue", headwear="a white hat", pos="on the left", size="tall")
    caps = {caption_of(f"k{i}", f) for i in range(40)}
    assert len(caps) == len(CAPTION_TEMPLATES)  # every template is used, the same key always gets the same one
    assert caption_of("k1", f) == caption_of("k1", f)
    assert all("red" in c and "woman" in c and "left" not in c and "tall" not in c for c in caps)


def test_the_caption_table_covers_every_instance(tiny_synth_root):
    import json

    fields = json.loads((tiny_synth_root / "attributes.json").read_text())
    table = caption_table(tiny_synth_root)
    assert set(table) == set(fields) and all(fields[k]["shirt"] in c for k, c in table.items())


@pytest.mark.parametrize("name", sorted(TEXT_PART))
def test_each_familys_pair_trains_its_visual_and_its_text_tower(name, tiny_synth_root):
    """One corpus batch through ``contrastive_pair`` (the person crop reading its caption): the loss reaches both
    towers, and the two embeddings have one width (no projection is added: the shipped files keep their layout)."""
    from ravar_bench.data.dataset import stored_resolution
    from ravar_bench.engine.text_cache import TextFeatureCache
    from ravar_bench.engine.trainer import make_loader
    from ravar_bench.pretraining.corpus import attribute_table
    from test_pretrained_weights import _source_at

    base_cfg, cfg = P.instance_config(name, 32, train_towers=True)
    torch.manual_seed(0)
    method = METHODS.get(name)(**model_kwargs(cfg))
    method.train()
    needs = set(method.needs) | stored_resolution(method.needs)
    src = _source_at(tiny_synth_root)
    tc = TextFeatureCache(dict(load_config(name, "tiny").text_encoder))
    data_cfg = base_cfg.copy()
    data_cfg.train.batch_size = 4
    _, loader = make_loader(src, "train", data_cfg, needs, shuffle=False)
    crop, _, _, caps = next(P._batches(needs, loader, tc, base_cfg, 32, attribute_table(src.root),
                                       caption_table(src.root)))
    visual, text = method.contrastive_pair(P._caption_batch(crop, caps, tc, needs))
    assert visual.shape[0] == text.shape[0] == len(caps) and visual.shape[-1] == text.shape[-1]
    contrastive_loss(visual, text, caps).backward()
    grads = {n: p.grad for n, p in method.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert any(n.startswith(TEXT_PART[name]) for n in grads), f"{name}: no gradient reached the text tower"
    assert any(n.startswith(VISUAL_PART[name]) for n in grads), f"{name}: no gradient reached the visual tower"


def test_a_file_made_without_the_pair_is_out_of_date_for_a_family_that_has_one(tmp_path, tiny_synth_root):
    from ravar_bench.encoders.shipped_weights import read_manifest
    from ravar_bench.engine.text_cache import TextFeatureCache
    from test_pretrained_weights import _source_at

    src = _source_at(tiny_synth_root)
    tc = TextFeatureCache(dict(load_config("clip_detr", "tiny").text_encoder))
    e = P.pretrain_one("clip_detr", 32, src, tc, tmp_path, progress=False, epochs=1, code={"git_commit": "0" * 40})
    assert e["contrastive"] == CONTRASTIVE and "caption_R1" in e["pretext_val"]
    assert "caption R@1" in P.describe("clip_detr", 32, read_manifest(tmp_path)["files"]["clip_detr@32.safetensors"])
    # the real recipe's entry, so that only the pair decides (epochs=1 above is not the recipe's)
    import json

    man = json.loads((tmp_path / "manifest.json").read_text())
    man["files"]["clip_detr@32.safetensors"].update(P.recipe_entry("clip_detr", 32))
    (tmp_path / "manifest.json").write_text(json.dumps(man))
    _, cfg = P.instance_config("clip_detr", 32, train_towers=True)
    method = METHODS.get("clip_detr")(**model_kwargs(cfg))
    assert P.up_to_date("clip_detr", 32, method, tmp_path)
    man["files"]["clip_detr@32.safetensors"].pop("contrastive")  # as e18 made it
    (tmp_path / "manifest.json").write_text(json.dumps(man))
    assert not P.up_to_date("clip_detr", 32, method, tmp_path)
