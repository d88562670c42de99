"""The offline evaluation command runs, and on a small world the hybrid clearly beats popularity."""

from __future__ import annotations

import json

import pytest

from devdata import rec_evaluation as evaluate


def test_evaluation_command_reports_every_method(capsys: pytest.CaptureFixture[str]) -> None:
    assert evaluate.main(["--small", "--users", "200", "--tracks", "500", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    methods = {m["method"]: m for m in report["methods"]}
    assert set(methods) == {"popularity", "collaborative", "content", "hybrid"}
    assert report["users_evaluated"] > 150
    for m in methods.values():
        assert m["list_length"] == 30
        assert 0 <= m["recall_at_30"] <= 1 and 0 <= m["ndcg_at_30"] <= 1
        assert m["artists_per_list"] >= 15, "at most 2 per artist means at least 15 artists in 30 tracks"
    assert methods["hybrid"]["recall_at_30"] > 1.3 * methods["popularity"]["recall_at_30"]
    assert methods["hybrid"]["coverage"] > methods["popularity"]["coverage"]
    assert report["ann_recall_at_10"]["tracks"] >= 0.95
    assert report["ann_recall_at_10"]["users"] >= 0.95
    assert "hybrid / popularity" in evaluate.format_report(
        evaluate.Report(**{**report, "methods": [evaluate.MethodResult(**m) for m in report["methods"]]})
    )
