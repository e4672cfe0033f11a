"""Fan-out of methods x seeds as independent jobs through submitit (Slurm on a cluster, local processes
elsewhere), then one merge: results.csv, significance, plots and the table. Each job writes only its own
result files, so jobs never overwrite each other and a failed job loses only itself."""
from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)


def _job(method: str, seed: int, out_dir: str, kwargs: dict) -> list:
    from .bench import run_benchmark

    # the launcher holds the folder's run lock for all its jobs
    res = run_benchmark([method], out_dir, seeds=(seed,), pictures=False, progress=False, lock=False, **kwargs)
    if res["failures"]:
        raise RuntimeError(f"{method} seed {seed}: {res['failures']}")
    return [method, seed]


def fan_out(methods: list[str], seeds, out_dir: str | Path, cluster: str | None = None, slurm: dict | None = None,
            **kwargs) -> dict:
    """``cluster``: None (submitit picks Slurm when present, else local), "local" or "debug" (in-process)."""
    from .lock import RunLock

    out_dir = Path(out_dir)
    kwargs = dict(kwargs)
    with RunLock(out_dir, command=kwargs.get("command", ""), wait=kwargs.pop("wait", False)):
        return _fan_out(methods, seeds, out_dir, cluster, slurm, **kwargs)


def _fan_out(methods, seeds, out_dir: Path, cluster, slurm, **kwargs) -> dict:
    import submitit

    from ..engine.data_source import open_source
    from .bench import run_benchmark

    # make the embedded data once, before the jobs start
    open_source(kwargs.get("data", "synthetic"), kwargs.get("data_root"), kwargs.get("synth"), progress=False)
    ex = submitit.AutoExecutor(folder=str(out_dir / "submitit"), cluster=cluster)
    params = {"timeout_min": 240, **(slurm or {})}
    if ex.cluster == "slurm":
        ex.update_parameters(**params)
    else:
        ex.update_parameters(timeout_min=params["timeout_min"])
    jobs = []
    with ex.batch():
        for m in methods:
            for s in seeds:
                jobs.append((m, s, ex.submit(_job, m, s, str(out_dir), kwargs)))
    failures = {}
    for m, s, job in jobs:
        try:
            job.result()
        except Exception as e:  # noqa: BLE001 - collected and reported, the other jobs' results stay
            failures[f"{m}/seed{s}"] = f"{type(e).__name__}: {e}"
            log.error("job %s seed %s failed: %s", m, s, e)
    # the merge: every result already exists, so this trains nothing and only scores, plots and tabulates
    res = run_benchmark(methods, out_dir, seeds=tuple(seeds), progress=False, lock=False, **{**kwargs, "force": False})
    res["failures"].update(failures)
    return res
