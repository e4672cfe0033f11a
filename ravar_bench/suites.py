"""The paper's tables as runnable suites: which methods, which reference table, which columns."""
from __future__ import annotations

# RefAtomNet's ablation and backbone variants are other architectures than refatomnet's shipped pretrained tiny
# files (ravar_bench/weights/tiny/): no file ships for them, so within their tables every row starts from random
# weights, refatomnet too, and the rows differ only by the module the table varies
RANDOM_START = {"init.weights": "scratch"}

SUITES = {
    # controls run beside Table 2 as reference lines (not methods of the paper)
    "table2": dict(methods="all", controls=["chance"], table="2", title="Table 2: RAVAR benchmark"),
    "table3a": dict(methods=["refatomnet", "refatomnet_wo_alsaf", "refatomnet_wo_caaf", "refatomnet_wo_catf",
                             "refatomnet_wo_lsas"], table="3a", cfg_options=RANDOM_START, title="Table 3a: module ablation of RefAtomNet"),
    "table3b": dict(methods=["fusion_add", "fusion_concat", "fusion_mul", "fusion_attention_bottleneck",
                             "fusion_mcomet", "refatomnet"], table="3b", cfg_options=RANDOM_START,
                    title="Table 3b: fusion alternatives"),
    "table4a": dict(methods=["singularity", "xclip", "askanything", "blipv2", "refatomnet"], table="4a",
                    cfg_options={"eval.rephrase": True}, value_prefix="rephrase_",
                    aliases={"AskAnything13B": "AskAnything"},
                    title="Table 4a: test-time rephrasing (mean over the original and two rephrasings)"),
    "table4b": dict(methods=["xclip", "refatomnet_xclip", "blipv2", "refatomnet"], table="4b", cfg_options=RANDOM_START,
                    aliases={"RefAtomNet": "RefAtomNet (BLIPv2)"}, title="Table 4b: RefAtomNet's backbone"),
}


def suite(name: str) -> dict:
    if name not in SUITES:
        from .errors import UsageError

        raise UsageError(f"unknown suite {name!r}; known: {', '.join(SUITES)}")
    return SUITES[name]


def run_options(name: str, cfg_options: dict | None = None, epochs: int | None = None) -> dict:
    """The ``cfg_options`` every method of a run of suite ``name`` gets: the suite's own (Table 4a's rephrasing),
    then the user's ``--cfg-options``, then ``--epochs`` as ``train.epochs``."""
    opts = {**suite(name).get("cfg_options", {}), **(cfg_options or {})}
    if epochs is not None:
        opts["train.epochs"] = epochs
    return opts


def suite_methods(name: str, methods: str | None = None) -> list[str]:
    """The methods a run of suite ``name`` trains: ``methods`` ("all", a family, or names) or the suite's own;
    Table 2 ("all") comes with the suite's reference controls."""
    from .registry import resolve_methods

    spec = suite(name)
    spec_methods = methods or ("all" if spec["methods"] == "all" else ",".join(spec["methods"]))
    out = resolve_methods(spec_methods)
    if "all" in spec_methods.split(","):
        out += [c for c in spec.get("controls", []) if c not in out]
    return out
