"""Tests of the Python package: verdicts, extraction, conventions, batches, and bad input that
must raise a Python exception rather than crash the interpreter."""

import json
import pathlib
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

import arbitrage_grader as ag
from arbitrage_grader import GradeOptions, Verdict, extract_answer, verify, verify_batch

CASES = pathlib.Path(__file__).resolve().parents[2] / "grader" / "tests" / "data"


def load(name):
    path = CASES / name
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert rows, f"{path} is empty"
    return rows


def test_a_boxed_answer_equals_the_gold_and_is_returned():
    v = verify("\\frac{1}{2}", "so the answer is $\\boxed{0.5}$")
    assert isinstance(v, Verdict)
    assert v.equal is True and bool(v) is True
    assert v.gold == "\\frac{1}{2}"
    assert v.pred == "0.5"
    assert repr(v) == "Verdict(equal=True, gold='\\\\frac{1}{2}', pred='0.5')"


def test_a_wrong_answer_is_not_equal_and_nothing_found_is_none():
    assert not verify("10000", "The answer is 10001.")
    v = verify("7", "")
    assert v.equal is False and v.pred is None


def test_extract_answer_reads_the_last_box():
    assert extract_answer("We try $\\boxed{3}$ then find $\\boxed{\\frac{7}{2}}$.") == "\\frac{7}{2}"
    assert extract_answer("") is None


def test_conventions_are_declared_and_change_only_their_verdicts():
    assert not verify("40\\pi", "125.663")
    assert verify("40\\pi", "125.663", tolerance="relative:1e-4")
    assert verify("40\\pi", "125.663", options=GradeOptions(tolerance="relative"))
    assert not verify("\\frac13", "0.3333", tolerance="exact")
    assert verify("\\frac13", "0.3333")
    assert verify("12 cm", "12 km")
    assert not verify("12 cm", "12 km", units="must-match")
    assert not verify("10, 4, -2", "4, 10, -2")
    assert verify("10, 4, -2", "4, 10, -2", list_order="any")
    # A keyword overrides the same field of `options` and keeps the others.
    strict = GradeOptions(tolerance="exact", units="must-match")
    assert verify("12 cm", "12 km", options=strict, units="ignore")
    assert not verify("\\frac13", "0.3333", options=strict, units="ignore")


def test_grade_options_read_back_and_compare():
    o = GradeOptions(tolerance="relative:1e-6", units="must_match", list_order="any")
    assert (o.tolerance, o.units, o.list_order) == ("relative:0.000001", "must-match", "any")
    assert GradeOptions() == GradeOptions("rounded", "ignore", "ordered")
    assert repr(GradeOptions()) == "GradeOptions(tolerance='rounded', units='ignore', list_order='ordered')"


@pytest.mark.parametrize(
    "kwargs",
    [{"tolerance": "close"}, {"tolerance": "relative:2"}, {"tolerance": "relative:nan"},
     {"units": "metric"}, {"list_order": "sorted"}],
)
def test_unknown_conventions_raise_value_error(kwargs):
    with pytest.raises(ValueError):
        GradeOptions(**kwargs)
    with pytest.raises(ValueError):
        verify("1", "1", **kwargs)


def test_our_labelled_cases_agree_through_the_binding():
    rows = load("generalisation.jsonl")
    wrong = [r for r in rows if verify(r["gold"], r["pred"]).equal != r["expected"]]
    assert not wrong, wrong[:3]


def test_a_batch_gives_the_single_verdicts_in_input_order():
    rows = load("generalisation.jsonl") + load("answer_pairs.jsonl")
    golds, preds = [r["gold"] for r in rows], [r["pred"] for r in rows]
    single = [(v.equal, v.gold, v.pred) for v in (verify(g, p) for g, p in zip(golds, preds))]
    for threads in (None, 1, 3):
        batch = verify_batch(golds, preds, threads=threads)
        assert [(v.equal, v.gold, v.pred) for v in batch] == single
    assert verify_batch([], []) == []
    tuples = verify_batch(("1",), ("1",))
    assert tuples[0].equal
    loose = verify_batch(["40\\pi"], ["125.663"], options=GradeOptions(tolerance="relative"))
    assert loose[0].equal


def test_batches_from_several_python_threads_agree():
    rows = load("answer_pairs.jsonl")
    golds, preds = [r["gold"] for r in rows], [r["pred"] for r in rows]
    want = [v.equal for v in verify_batch(golds, preds)]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda _: [v.equal for v in verify_batch(golds, preds)], range(8)))
    assert all(g == want for g in got)


def test_a_batch_lets_other_python_threads_run():
    # A heavy batch in one thread; the main thread keeps counting meanwhile.
    golds = ["\\sum_{k=1}^{9000} \\frac{1}{k}"] * 64
    preds = ["\\sum_{k=1}^{9001} \\frac{1}{k}"] * 64
    done = threading.Event()
    worker = threading.Thread(target=lambda: (verify_batch(golds, preds, threads=1), done.set()))
    ticks = 0
    worker.start()
    while not done.is_set():
        ticks += 1
    worker.join()
    assert ticks > 1000


@pytest.mark.parametrize("bad", [1, 2.5, None, b"1", ["1"], {"gold": "1"}])
def test_non_strings_raise_type_error(bad):
    with pytest.raises(TypeError):
        verify(bad, "1")
    with pytest.raises(TypeError):
        verify("1", bad)
    with pytest.raises(TypeError):
        extract_answer(bad)


def test_batches_of_non_strings_raise_type_error():
    with pytest.raises(TypeError):
        verify_batch(["1", 2], ["1", "2"])
    with pytest.raises(TypeError):
        verify_batch("12", "12")  # a string is not a list of answers
    with pytest.raises(TypeError):
        verify_batch(None, None)


def test_batches_of_unequal_length_or_zero_threads_raise_value_error():
    with pytest.raises(ValueError, match="as long"):
        verify_batch(["1", "2"], ["1"])
    with pytest.raises(ValueError, match="threads"):
        verify_batch(["1"], ["1"], threads=0)
    with pytest.raises((OverflowError, TypeError)):
        verify_batch(["1"], ["1"], threads=-1)


def test_huge_strings_raise_value_error():
    huge = "1" * (ag.MAX_INPUT_BYTES + 1)
    with pytest.raises(ValueError, match="bytes"):
        verify("1", huge)
    with pytest.raises(ValueError, match="bytes"):
        verify(huge, "1")
    with pytest.raises(ValueError, match=r"preds\[1\]"):
        verify_batch(["1", "1"], ["1", huge])
    with pytest.raises(ValueError):
        extract_answer(huge)


def test_long_but_allowed_strings_are_graded():
    text = "Some reasoning. " * 60_000 + "The answer is $\\boxed{42}$."
    assert verify("42", text).equal
    # Deeply nested input gets a verdict (whatever it is), not a stack overflow.
    deep = "\\frac{" * 20_000 + "1" + "}" * 20_000
    assert isinstance(verify(deep, deep), Verdict)
    assert isinstance(verify("1", deep), Verdict)
    assert verify("1", "(" * 10_000).equal is False


def test_strings_python_cannot_encode_raise_unicode_error():
    with pytest.raises(UnicodeEncodeError):
        verify("\ud800", "1")
    with pytest.raises(UnicodeEncodeError):
        verify_batch(["1"], ["\udfff"])


def test_odd_but_valid_text_is_graded():
    assert verify("5", "\x00\x01 the answer is 5").equal
    assert verify("15", "小明有 8 个苹果，又买了 7 个，所以一共有 15 个苹果。").equal
    assert not verify("1", "\U0001F600" * 1000).equal
