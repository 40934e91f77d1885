"""training.compare: the batched dev scorer matches CrossEncoder, and the paired statistics are right."""

from __future__ import annotations

from pathlib import Path

import pytest

from evaluation.candidates import Candidates
from evaluation.harness import evaluate
from evaluation.tasks import Query, Task
from training.compare import Checked, candidate_pairs, main, paired_difference, precomputed_system, report

CORPUS = ("gzip compresses files", "vim edits text", "mutt reads mail", "nginx serves the web")
TASK = Task(name="hand-made", lang="en", corpus=CORPUS,
            queries=(Query("q0", "gzip", "compress files", 0), Query("q1", "vim", "text editor", 1),
                     Query("q2", "mutt", "mail reader", 2)))
CANDIDATES = Candidates(doc_ids=((1, 0, 3), (1, 2, 0), (0, 3, 1)), scores=((3.0, 2.0, 1.0),) * 3,
                        seconds=0.0, cached=False)


def test_paired_difference_has_the_known_mean_and_standard_error() -> None:
    # differences 0.5, 0, 0: mean 1/6, sample variance 1/12, so the standard error is sqrt(1/36)
    mean, se = paired_difference([1.0, 0.5, 0.0], [0.5, 0.5, 0.0])
    assert mean == pytest.approx(1 / 6) and se == pytest.approx(1 / 6)
    with pytest.raises(ValueError, match="two equal lists"):
        paired_difference([1.0, 0.5], [1.0])


def test_precomputed_scores_give_the_harness_the_ranks_they_imply() -> None:
    pairs = candidate_pairs(TASK, CANDIDATES)
    assert len(pairs) == 9 and pairs[0] == ("compress files", "vim edits text")
    # The relevant passage ends 2nd for q0 and 1st for q1; q2's is not among its candidates.
    scores = [0.5, 0.1, 0.0, 0.9, 0.2, 0.3, 0.2, 0.1, 0.0]
    result = evaluate(precomputed_system("stub", pairs, scores), TASK, CANDIDATES, recall_k=3)
    assert result.ranks == (2, 1, None)
    checked = Checked(checkpoint=Path("stub"), result=result, pairs_per_s=1.0)
    assert checked.reciprocal_ranks == [0.5, 1.0, 0.0]
    assert result.metrics["MRR@10"] == pytest.approx(sum(checked.reciprocal_ranks) / 3)
    best = [0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0]  # q0's relevant passage first too
    better = Checked(Path("best"), evaluate(precomputed_system("best", pairs, best), TASK, CANDIDATES, 3), 1.0)
    rows = report([checked, better])
    assert rows[0]["MRR@10 vs first"] == 0.0
    assert rows[1]["MRR@10 vs first"] == round(1 / 6, 4) and rows[1]["MRR@10"] == pytest.approx(2 / 3)


def test_batched_scores_match_cross_encoder_predict(checkpoint) -> None:
    pytest.importorskip("torch")
    from sentence_transformers import CrossEncoder

    from training.compare import score_pairs

    path = checkpoint("bert")
    pairs = candidate_pairs(TASK, CANDIDATES)
    # A budget of 24 tokens puts these short pairs into several differently padded micro-batches.
    scores, speed = score_pairs(path, pairs, max_length=32, token_budget=24)
    reference = CrossEncoder(str(path), device="cpu", max_length=32).predict(pairs, batch_size=9,
                                                                             show_progress_bar=False)
    assert speed > 0
    assert max(abs(a - float(b)) for a, b in zip(scores, reference, strict=True)) < 1e-5
    assert len(set(round(s, 6) for s in scores)) > 1  # not a constant that would match anything


def test_cli_refuses_bad_arguments_with_exit_2(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path)]) == 2
    assert "no config.json" in capsys.readouterr().err
    assert main([str(tmp_path), "--queries", "1"]) == 2
    assert "--queries must be at least 2" in capsys.readouterr().err
