"""The explorable page (index.html) of a small real run, opened in headless Chromium and checked by its DOM.

The browser is Debian's ``chromium`` + ``chromium-driver`` (``.ci/run`` installs them); Selenium drives that
binary, nothing is downloaded. Without the binaries the browser test is skipped, except under CI (CI=true), where
their absence is a failure. The page is written by the main job itself (run_benchmark), so the hook is tested too.
"""
import base64
import json
import os
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import TINY_SYNTH

METHODS = ["chance", "x3d", "clip4clip"]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module")
def run_dir(tiny_synth_root, tmp_path_factory):
    from ravar_bench.data.synthetic import SynthConfig
    from ravar_bench.runner.bench import run_benchmark

    out = tmp_path_factory.mktemp("html_run")
    old = os.environ.get("RAVAR_CACHE")
    os.environ["RAVAR_CACHE"] = str(tiny_synth_root.parent)
    try:
        res = run_benchmark(METHODS, out, synth=SynthConfig(**TINY_SYNTH), epochs=1, progress=False,
                            command="pytest tests/test_html_report.py", cfg_options={"data.img_size": 64})
    finally:
        if old is None:
            os.environ.pop("RAVAR_CACHE")
        else:
            os.environ["RAVAR_CACHE"] = old
    assert not res["failures"], res["failures"]
    assert res["page"] == out / "index.html"
    return out


@pytest.fixture(scope="module")
def browser_present():
    """Before the run is made: a machine without the browser skips at once (CI: fails)."""
    if not (CHROMIUM and DRIVER):
        msg = "no chromium + chromedriver on this machine (apt-get install -y chromium chromium-driver)"
        if os.environ.get("CI") == "true":
            pytest.fail(msg + ": CI must have them (.ci/run installs them)")
        pytest.skip(msg)


def _browser():
    from selenium import webdriver  # in requirements.txt: a missing package is an error, not a skip
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    return webdriver.Chrome(service=Service(DRIVER), options=opts)


def _rows(d):
    return d.find_elements("css selector", "#leaderboard tbody tr")


def _order(d):
    return [r.get_attribute("data-method") for r in _rows(d) if r.is_displayed()]


def _cell(d, method, col):
    return d.find_element("css selector", f'#leaderboard tr[data-method="{method}"] [data-col="{col}"]')


def test_page_in_a_real_browser(browser_present, run_dir, tmp_path):
    df = pd.read_csv(run_dir / "results.csv")
    test = df[df["split"] == "test"].groupby("method")
    d = _browser()
    try:
        d.get((run_dir / "index.html").as_uri())
        for _ in range(100):
            if d.execute_script("return document.body.getAttribute('data-ready')") == "1":
                break
            time.sleep(0.1)
        assert d.execute_script("return document.body.getAttribute('data-ready')") == "1", d.get_log("browser")
        errors = [e for e in d.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors

        # one row per method of results.csv
        assert sorted(_order(d)) == sorted(df["method"].unique()) == sorted(METHODS)

        # clicking "test mAP" sorts by that value, largest first (then reversed), as results.csv orders them
        d.find_element("css selector", '#leaderboard th button[data-col="test mAP"]').click()
        want = test["mAP"].mean().sort_values(ascending=False).index.tolist()
        assert _order(d) == want
        for m in METHODS:
            assert float(_cell(d, m, "test mAP").get_attribute("data-value")) == pytest.approx(
                test["mAP"].mean()[m], abs=1e-3)
        d.find_element("css selector", '#leaderboard th button[data-col="test mAP"]').click()
        assert _order(d) == want[::-1]

        # the family filter hides the other families' rows
        fam = df.drop_duplicates("method").set_index("method")["family"]
        from selenium.webdriver.support.ui import Select

        Select(d.find_element("id", "family-filter")).select_by_value("AAL")
        assert _order(d) == [m for m in want[::-1] if fam[m] == "AAL"] == ["x3d"]
        assert len(_rows(d)) == len(METHODS)  # hidden, not removed
        Select(d.find_element("id", "family-filter")).select_by_value("")
        assert len(_order(d)) == len(METHODS)

        # the protocol switch shows the macro numbers
        weighted = {m: _cell(d, m, "test mAP").text for m in METHODS}
        d.find_element("id", "protocol-macro").click()
        macro = {m: _cell(d, m, "test mAP").text for m in METHODS}
        assert macro == {m: f"{test['macro_mAP'].mean()[m]:.2f}" for m in METHODS}
        assert macro != weighted
        assert "plain mean over the classes" in d.find_element("id", "protocol-note").text
        d.find_element("id", "protocol-weighted").click()
        assert {m: _cell(d, m, "test mAP").text for m in METHODS} == weighted

        # the hover text of a cell holds its 95% bootstrap interval from results.csv
        r = df[(df["method"] == "x3d") & (df["split"] == "test")].iloc[0]
        title = _cell(d, "x3d", "test mAP").get_attribute("title")
        assert f"[{r['mAP_ci_lo']:.2f}, {r['mAP_ci_hi']:.2f}]" in title
        _cell(d, "x3d", "test mAP").click()  # keyboard / touch: the same text below the table
        assert f"[{r['mAP_ci_lo']:.2f}, {r['mAP_ci_hi']:.2f}]" in d.find_element("id", "cell-detail").text

        # the per-class heat map: 80 class columns, AVA names on hover
        heads = d.find_elements("css selector", "#heatmap thead th[data-class]")
        assert len(heads) == 80
        assert "bend/bow (at the waist)" in heads[0].get_attribute("title")
        for tr in d.find_elements("css selector", "#heatmap tbody tr"):
            assert len(tr.find_elements("css selector", "td")) == 80

        # the charts were drawn (SVG by vega-embed), the examples show inlined key frames and page through
        assert len(d.find_elements("css selector", "#chart-map svg.marks")) == 1
        assert len(d.find_elements("css selector", "#chart-scatter svg.marks")) == 1
        img = d.find_element("css selector", "#qual-body figure img")
        assert img.get_attribute("src").startswith("data:image/jpeg;base64,")
        assert d.execute_script("return arguments[0].naturalWidth", img) > 0
        counter = d.find_element("id", "qual-counter").text
        d.find_element("id", "qual-next").click()
        assert d.find_element("id", "qual-counter").text != counter
        assert "pytest tests/test_html_report.py" in d.find_element("id", "prov-body").text

        # no request left the page: only the file itself, no resource fetched, nothing blocked
        sent = [json.loads(e["message"])["message"] for e in d.get_log("performance")]
        urls = [m["params"]["request"]["url"] for m in sent if m["method"] == "Network.requestWillBeSent"]
        assert urls and all(u.startswith(("file:", "data:")) for u in urls), urls
        assert d.execute_script("return performance.getEntriesByType('resource')"
                                ".filter(e => !/^(data|file):/.test(e.name)).length") == 0
        assert d.execute_script("return window.__cspViolations") == []

        shot = Path(os.environ.get("RAVAR_TEST_ARTIFACTS", tmp_path)) / "index_html_screenshot.png"
        shot.parent.mkdir(parents=True, exist_ok=True)
        height = d.execute_script("window.scrollTo(0, 0); return document.documentElement.scrollHeight")
        png = d.execute_cdp_cmd("Page.captureScreenshot", {"captureBeyondViewport": True, "clip": {
            "x": 0, "y": 0, "width": 1280, "height": height, "scale": 1}})  # the whole page, not the window
        shot.write_bytes(base64.b64decode(png["data"]))
        assert shot.stat().st_size > 10_000
        print(f"screenshot of the page: {shot}")

        # control: a request the page did not make is caught, so the checks above can fail
        d.execute_script("var i = new Image(); i.src = 'http://192.0.2.1/x.png'; document.body.appendChild(i);")
        time.sleep(0.5)
        assert d.execute_script("return window.__cspViolations.length") >= 1
    finally:
        d.quit()


def test_page_from_results_csv_alone(run_dir, tmp_path):
    """Rebuilt by the leaderboard tool from results.csv alone: the page is still written, and the sections that
    need predictions or frames say so."""
    shutil.copy(run_dir / "results.csv", tmp_path / "results.csv")
    from ravar_bench.cli import tool_main  # what tools/make_leaderboard.py runs, in this process (no re-import)
    from ravar_bench.report.webpage import page_data

    assert tool_main("leaderboard", [str(tmp_path), "--html", "--data-root", str(tmp_path / "nowhere")]) == 0
    assert (tmp_path / "leaderboard.md").is_file()

    data = page_data(tmp_path, source_root=tmp_path / "nowhere")
    assert [row["method"] for row in data["rows"]] == ["x3d", "clip4clip", "chance"]  # the paper's row order
    assert not data["qualitative"]["available"] and "no predictions" in data["qualitative"]["reason"]
    assert data["per_class"]["ap"] == {}
    html = (tmp_path / "index.html").read_text()
    assert "<script src" not in html and "http://" not in html.split("<script>", 2)[0]
    assert "default-src 'none'" in html and (tmp_path / "index.html").stat().st_size < 2_000_000

    # with predictions but a data root without the frames, the examples section names what it tried
    shutil.copytree(run_dir / "predictions", tmp_path / "predictions")
    q = page_data(tmp_path, source_root=tmp_path / "nowhere")["qualitative"]
    assert not q["available"] and q["reason"].startswith("frames not available") and "nowhere" in q["reason"]


def test_page_data_matches_results_csv(run_dir):
    import numpy as np

    from ravar_bench.report.webpage import page_data
    from ravar_bench.scoring.metrics import per_class_ap

    df = pd.read_csv(run_dir / "results.csv")
    data = page_data(run_dir)
    row = {r["method"]: r for r in data["rows"]}
    for m in METHODS:
        t = df[(df["method"] == m) & (df["split"] == "test")].iloc[0]
        c = row[m]["cells"]["gated"]["test mAP"]
        assert c["mean"] == pytest.approx(t["gated_mAP"], abs=1e-4) and c["n"] == 1 and c["std"] is None
        assert row[m]["people"]["test"]["p2"]["n"] == (None if pd.isna(t["n_p2"]) else pytest.approx(t["n_p2"]))
        assert row[m]["swap"]["test"]["drop_mAP"] == pytest.approx(t["swap_drop_mAP"], abs=1e-4)
        # the heat map's values are an independent recomputation from the saved predictions
        with np.load(run_dir / "predictions" / f"{m}__test__seed0.npz") as z:
            ap = per_class_ap(z["scores"], z["labels"])
        got = np.array([np.nan if v is None else v for v in data["per_class"]["ap"][m]])
        assert np.allclose(got, ap, atol=1e-3, equal_nan=True)
        # the mean of the finite per-class APs weighted by positives is the run's weighted mAP
        pos = np.array(data["per_class"]["positives"], dtype=float)
        ok = np.isfinite(ap)
        assert np.sum(ap[ok] * pos[ok]) / pos[ok].sum() == pytest.approx(t["mAP"], abs=1e-2)
    assert sum(r["sig"]["weighted"]["best"] for r in data["rows"]) == 1


def test_page_data_seeds_and_significance(tmp_path):
    """Two seeds: mean ± std per cell (std with ddof=1), significance marks from p_vs_best_mAP, no predictions."""
    rows = []
    for method, fam, pname, base, p in (("x3d", "AAL", "X3D", 20.0, 0.30), ("clip4clip", "VTR", "CLIP4CLIP", 30.0, -1.0),
                                        ("i3d", "AAL", "I3D", 10.0, 0.01)):
        for seed in (0, 1):
            for split in ("val", "test"):
                rows.append(dict(method=method, family=fam, paper_name=pname, split=split, seed=seed, mIoU=base,
                                 mAP=base + 2 * seed,
                                 AUROC=50.0, macro_mAP=base - 5, config_set="tiny", data="synthetic:x",
                                 n_instances=100, p_vs_best_mAP=p, p_n_boot=500, mAP_ci_lo=base - 3,
                                 mAP_ci_hi=base + 3 + seed))
    pd.DataFrame(rows).to_csv(tmp_path / "results.csv", index=False)
    from ravar_bench.report.webpage import page_data, write_html

    data = page_data(tmp_path)
    by = {r["method"]: r for r in data["rows"]}
    c = by["clip4clip"]["cells"]["weighted"]["test mAP"]
    assert (c["mean"], c["std"], c["n"]) == (31.0, pytest.approx(2 ** 0.5, abs=1e-4), 2)
    assert (c["lo"], c["hi"]) == (27.0, 33.5)
    assert by["clip4clip"]["cells"]["macro"]["test mAP"] == {"mean": 25.0, "std": 0.0, "n": 2, "lo": None, "hi": None}
    assert [by[m]["sig"]["weighted"]["best"] for m in ("x3d", "clip4clip", "i3d")] == [False, True, False]
    assert [by[m]["sig"]["weighted"]["ns"] for m in ("x3d", "clip4clip", "i3d")] == [True, False, False]
    assert "gated" not in [p["id"] for p in data["protocols"]]  # no gated_* columns: no such switch position
    assert by["x3d"]["paper"]["val mAP"] == 44.45  # the paper's Table 2
    assert not data["qualitative"]["available"] and data["per_class"]["ap"] == {}
    assert write_html(tmp_path).stat().st_size < 1_500_000
