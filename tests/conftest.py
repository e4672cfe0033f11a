import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
torch.set_num_threads(2)
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TINY_SYNTH = dict(seed=7, train_movies=2, val_movies=1, test_movies=1, clips_per_movie=3)


@pytest.fixture(scope="session")
def tiny_synth_root(tmp_path_factory):
    """A small RefAVA-Synth written by the real generator (the real loader reads it)."""
    from ravar_bench.data.synthetic import SynthConfig, ensure_synthetic

    return ensure_synthetic(SynthConfig(**TINY_SYNTH), cache_dir=tmp_path_factory.mktemp("synth"), progress=False)
