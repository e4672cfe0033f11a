"""The fault and bad-input battery (ravar_bench/testing/fault_battery.py; benchmarks/faults.py prints the same cases).

Every case breaks one thing on a tiny RefAVA-Synth and runs the real pipeline: kills are real (a subprocess
parked at a named point, then SIGKILL), disk-full is a real ENOSPC from /dev/full, bad data is written into a
copy of the release layout. Each must end in a clear error naming file / key / field, or a counted skip shown
in the result rows and under the leaderboard, and lose no finished result.
"""
import pytest

from ravar_bench.testing.fault_battery import Battery


@pytest.fixture(scope="module")
def battery(tmp_path_factory, tiny_synth_root):
    return Battery(tmp_path_factory.mktemp("faults"), synth_root=tiny_synth_root)


def _no_loss(cases):
    cases = cases if isinstance(cases, list) else [cases]
    assert cases and all(c.lost == 0 for c in cases), [c.line() for c in cases]


def test_kill_during_method_3_of_5_and_during_each_write_then_resume(battery):
    """kill -9 in method 3 of 5, then while results.csv / a result JSON / a checkpoint is written: the rerun
    resumes the method from its last epoch, never reads a half-written file, and ends equal (1e-6) to an
    uninterrupted run."""
    _no_loss(battery.kill_and_resume())


def test_bad_frames_error_before_training_or_counted_skip(battery):
    _no_loss(battery.bad_frames())


@pytest.mark.parametrize("name", list(Battery.ROW_CASES))
def test_bad_annotation_row(battery, name):
    _no_loss(battery.bad_row(name))


def test_bad_rows_counted_per_split_and_under_the_leaderboard(battery):
    _no_loss(battery.bad_rows_counted())


def test_empty_split_and_unreadable_files(battery):
    _no_loss([battery.empty_split(), *battery.bad_files()])


def test_detections_cache_missing_key_and_malformed_entry(battery):
    _no_loss([battery.detections_missing_key(), battery.detections_malformed()])


def test_disk_full_on_checkpoint_write(battery):
    _no_loss(battery.disk_full())


def test_two_runs_into_one_folder(battery):
    _no_loss(battery.two_runs_one_folder())


# ---------------------------------------------------------------- the second battery (issue 26)
def test_detection_scores_outside_0_1(battery):
    _no_loss(battery.detections_bad_score())


def test_clip_before_the_movies_first_frame_names_key_frames_and_flag(battery):
    _no_loss(battery.clip_before_first_frame())


def test_several_boxes_or_sentences_counted_under_the_leaderboard(battery):
    _no_loss(battery.several_boxes_and_sentences())


def test_frame_of_another_size_is_not_stretched(battery):
    _no_loss(battery.frame_of_another_size())


def test_damaged_results_csv_rebuilt_or_one_line(battery):
    """A results.csv cut mid-row (or disagreeing with its JSON) gives the leaderboard of the intact files."""
    _no_loss(battery.damaged_results_csv())


def test_mistaken_flags_one_line_before_any_work(battery):
    _no_loss(battery.mistaken_flags())


def test_real_data_tools_end_bad_input_in_one_line(battery):
    _no_loss(battery.real_data_tools())
