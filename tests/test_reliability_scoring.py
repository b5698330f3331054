"""Reliability of answer scoring (thinkfast.scoring): one test per defect the probe found.

1. math-verify's signal-based timeout failed outside the main thread (a right answer scored wrong there).
2. Plain numbers were compared as floats with a tolerance (1000000001 == 1000000000).
3. Every comma was stripped (3,5 == 35).
4. An empty answer equalled an empty gold.
5. A unicode minus was dropped (-5 read as 5).
6. A box cut off at the end of a truncated text overrode an earlier complete one.
7. An empty box echoed from the instruction beat the answer stated later in words.
8. Adversarial answers took 5 s and more.
"""
import os
import random
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from thinkfast.scoring import extract_answer, is_equiv, normalize_answer, score_text

ROOT = Path(__file__).resolve().parents[1]


def in_thread(fn, *args):
    "fn(*args) run in a worker thread (not the main one)."
    with ThreadPoolExecutor(1) as ex: return ex.submit(fn, *args).result()


def test_1_same_verdict_in_a_worker_thread():
    assert is_equiv("\\frac{3}{4}", "0.75") is True
    assert in_thread(is_equiv, "\\frac{3}{4}", "0.75") is True
    assert in_thread(score_text, "so \\boxed{\\dfrac{1}{2}}", "0.5") == ("\\dfrac{1}{2}", True)
    assert in_thread(is_equiv, "\\frac{3}{5}", "0.75") is False


def test_1_symbolic_limit_is_hard_in_any_thread():
    from thinkfast.scoring import _WORKER
    is_equiv("\\frac{1}{2}", "0.5")                                   # the worker's one-time start
    for run in (lambda f: f(), lambda f: in_thread(f)):
        t0 = time.perf_counter()
        verdict = run(lambda: _WORKER.equal("1", "2^{100000000}", 0.3))   # sympy computes 2**100000000 in C
        dt = time.perf_counter() - t0
        assert verdict is False and dt < 1.5, (verdict, dt)
        assert run(lambda: is_equiv("\\frac{1}{4}", "0.25")) is True   # a fresh worker answers the next one


def test_2_numbers_compared_exactly():
    assert not is_equiv("1000000001", "1000000000")
    assert not is_equiv("0.0000000001", "0")
    assert not is_equiv("123456789012345678", "123456789012345679")
    assert is_equiv("18.00", "18") and is_equiv("$1,000", "1000") and is_equiv("-.5", "-0.5")


def test_3_commas_only_as_thousands_separators():
    assert not is_equiv("3,5", "35")
    assert not is_equiv("3, 5", "35")
    assert not is_equiv("1,00", "100")
    assert is_equiv("1,234,567", "1234567") and is_equiv("10,\\!080", "10080")
    assert normalize_answer("1, 234") != normalize_answer("1234")    # a list, not a number
    assert is_equiv("3, 5", "5, 3")                                  # lists are math-verify's to compare


def test_4_empty_answer_never_correct():
    assert not is_equiv("", "")
    assert not is_equiv("   ", " ")
    assert not is_equiv("$ $", "")
    assert score_text("The answer is \\boxed{}", "") == (None, False)
    assert score_text("\\boxed{ }", " ")[1] is False


def test_5_unicode_minus_is_a_minus():
    assert extract_answer("The temperature is \u22125 degrees.") == "-5"
    assert extract_answer("so x = \u20133") == "-3"                  # an en dash before a number
    assert score_text("The temperature is \u22125 degrees.", "5")[1] is False
    assert score_text("The temperature is \u22125 degrees.", "-5")[1] is True
    assert is_equiv("\u22125", "-5") and not is_equiv("\u22125", "5")


def test_6_truncated_trailing_box_ignored():
    text = "So the answer is \\boxed{42}.\n\nWait, let me double-check: 6 * 7 = 42, so \\boxed{4"
    assert extract_answer(text) == "42"
    assert score_text(text, "42") == ("42", True)
    assert extract_answer("The sum is 17, so \\boxed{4") == "17"     # no complete box: a fallback, not the '4'


def test_7_empty_box_ignored_and_box_beats_later_numbers():
    sample = ("Okay, the problem says to put the final answer within \\boxed{}. Let me work it out.\n"
              "There are 13 * 28 = 364 of them.\n\nSo, the final answer is 364.")
    assert score_text(sample, "364") == ("364", True)
    assert extract_answer("\\boxed{} then \\boxed{7} then \\boxed{ }") == "7"
    assert extract_answer("Thus \\boxed{12}. That is 12 eggs a day for 3 days.") == "12"   # the box wins
    assert extract_answer("He pays 3*4 = 12 dollars.\n#### 12") == "12"


random.seed(0)
_SOUP = ["\\frac", "{", "}", "^", "_", "\\sqrt", "x", "1", "9", "+", "-", "\\cdot", "(", ")", "\\left(", "\\right)",
         "\\pi", "!", "=", ",", "\\infty", "\\int", "\\sum", " ", "e", "\\{", "\\}", "[", "]", "\\text{", "$"]
ADVERSARIAL = [                                                   # (pred, gold)
    ("{" * 5_000 + "1" + "}" * 5_000, "1"), ("{" * 30 + "1" + "}" * 30, "1"),
    ("\\frac{" * 200 + "1" + "}{2}" * 200, "\\frac{3}{7}"), ("(" * 400 + "1" + ")" * 400, "\\frac{3}{7}"),
    ("1" * 50_000, "1"), ("x+" * 25_000 + "x", "x"), ("\\boxed{" * 8_000, "1"),
    ("\\frac{1}{3}", "0.333"), ("0.333", "\\frac{1}{3}"),
    ("10^{10^{10}}", "1"), ("9^{9^{9}}", "1"), ("9^{9^{9^{9^{9}}}}", "\\frac{3}{7}"), ("x^{2^{30}}", "1"),
    ("10^{10^{10}}", "10^{10^{10}}"), ("2^{100000000}", "1"), ("100000!", "1"), ("\\binom{1000000}{500000}", "1"),
    ("+".join(["1"] * 300), "300"), ("+".join(["1"] * 50), "50"), ("+".join(["x^{2}"] * 100), "100x^2"),
] + [("".join(random.choices(_SOUP, k=k)), "1") for k in (20, 60, 150, 2_000, 20_000)]
TEXTS = ["{" * 50_000 + "\\boxed{42}", "\\boxed{" * 10_000, "-" * 50_000 + "1", "The answer is " + "9" * 50_000]


def timed_verdicts():
    "(verdict, seconds) of each adversarial answer and text, in the calling thread."
    out = []
    for pred, gold in ADVERSARIAL:
        t0 = time.perf_counter()
        out.append((is_equiv(pred, gold), time.perf_counter() - t0))
    for text in TEXTS:
        t0 = time.perf_counter()
        out.append((score_text(text, "42")[1], time.perf_counter() - t0))
    return out


def test_8_adversarial_answers_fast_and_thread_independent():
    is_equiv("\\frac{1}{2}", "0.5")                                   # the worker's one-time start is not timed
    main = timed_verdicts()
    pool = in_thread(timed_verdicts)
    box = []
    th = threading.Thread(target=lambda: box.append(timed_verdicts()))
    th.start()
    th.join()
    verdicts = [v for v, _ in main]
    assert [v for v, _ in pool] == verdicts and [v for v, _ in box[0]] == verdicts
    slow = [(i, round(dt, 2)) for run in (main, pool, box[0]) for i, (_, dt) in enumerate(run) if dt >= 2]
    assert not slow, slow
    assert verdicts[:7] == [False] * 7 and verdicts[7] is False and verdicts[13] is True
    assert verdicts[-4:] == [True, False, False, False]


def test_worker_ends_with_its_interpreter():
    code = ("from thinkfast.scoring import is_equiv, _WORKER\n"
            "assert is_equiv('\\\\frac{3}{4}', '0.75')\n"
            "print(_WORKER.active.popen.pid)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    pid = int(out.stdout.split()[-1])
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
