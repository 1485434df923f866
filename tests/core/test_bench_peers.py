"""The bench's peers section: PyTorch and ONNX Runtime run the same model and weights (checked by their
output), and a missing package is said in one line while the rest of the bench runs."""

import importlib.util

from napari_superres import benchmark
from napari_superres.benchmark.peers import NEEDS


def _bench(sections):
    config = benchmark.BenchConfig.quick_config(models=["espcn-x2"], sections=sections, size=32, repeats=1)
    result = benchmark.run_bench(config)
    return result, benchmark.format_report(result)


def test_peers_run_the_same_model_or_say_what_is_missing():
    installed = all(importlib.util.find_spec(p) for need in NEEDS.values() for p in need)
    result, report = _bench(("peers",))
    assert "PEERS:" in report
    if installed:
        rows = result["peers"]["rows"]
        assert [r["peer"] for r in rows] == ["PyTorch", "ONNX Runtime"]
        for r in rows:
            assert r["max_diff"] < 1e-4  # same architecture and weights: the same output
            assert r["float32"]["speedup_cpu"] > 0 and r["auto"]["ms"] > 0
        assert "espcn-x2" in result["peers"]["auto"]
    else:
        assert "not installed (pip install 'napari-superres-keras[bench]')" in report


def test_a_missing_peer_package_is_one_line_and_the_bench_goes_on(monkeypatch):
    """With torch hidden (whatever else is installed), both peers say what they lack in one line each."""
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    result, report = _bench(("speed", "peers"))
    assert result["speed"][0]["model"] == "espcn-x2"
    assert result["peers"]["rows"] == []
    lines = [line for line in report.splitlines() if "not measured" in line]
    onnx_missing = " and ".join(p for p in NEEDS["onnxruntime"] if p == "torch" or real(p) is None)
    assert lines == ["PyTorch: not measured, torch not installed (pip install 'napari-superres-keras[bench]')",
                     f"ONNX Runtime: not measured, {onnx_missing} not installed "
                     "(pip install 'napari-superres-keras[bench]')"]
