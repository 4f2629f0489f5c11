import json
import time

import pytest
from bench.__main__ import SPIN, main, measure
from bench.workloads import WORKLOADS, Workload


def _sleeper(seconds: float):
    return lambda: time.sleep(seconds)


def test_measure_reports_medians_and_the_ratio_torch_over_striate():
    work = Workload("sleeps", lambda rng: (_sleeper(0.002), _sleeper(0.006)), flops=1e6)
    r = measure(work, repeat=5, warmup=1, seed=0, settle=0)
    assert len(r["striate_times"]) == len(r["torch_times"]) == 5
    assert 0.002 <= r["striate_s"] < r["torch_s"]
    assert r["ratio"] == pytest.approx(r["torch_s"] / r["striate_s"])
    assert r["striate_gflops"] == pytest.approx(1e6 / r["striate_s"] / 1e9)


def test_measure_pauses_before_every_timed_run_and_does_not_time_the_pause():
    calls = []

    def build(rng):
        return lambda: calls.append(time.perf_counter()), lambda: calls.append(time.perf_counter())

    start = time.perf_counter()
    r = measure(Workload("instant", build, flops=0), repeat=3, warmup=0, seed=0, settle=0.05)
    assert time.perf_counter() - start >= 6 * (0.05 + SPIN)  # idle, then busy-waiting
    assert max(r["striate_times"] + r["torch_times"]) < 0.05
    assert all(b - a >= 0.05 + SPIN for a, b in zip(calls, calls[1:], strict=False))


def test_json_report_holds_each_workload(tmp_path, capsys):
    name = "conv2d 1x1 96->24 56x56 b16 forward+backward"
    assert name in WORKLOADS
    path = tmp_path / "out" / "bench.json"
    assert main(["--only", name, "--repeat", "1", "--warmup", "0", "--settle", "0",
                 "--json", str(path)]) == 0
    report = json.loads(path.read_text())
    assert [r["name"] for r in report["results"]] == [name]
    assert report["settle_s"] == 0 and report["results"][0]["ratio"] > 0
    assert name in capsys.readouterr().out
    assert [p.name for p in path.parent.iterdir()] == ["bench.json"]  # no temporary file left


@pytest.mark.parametrize("argv", [["--only", "no such workload"], ["--settle", "-1"],
                                  ["--repeat", "0"]])
def test_bad_arguments_exit_with_a_message(argv, capsys):
    with pytest.raises(SystemExit, match="^2$") as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "error:" in capsys.readouterr().err
