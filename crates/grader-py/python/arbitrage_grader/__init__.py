"""Math answer grading: is the model's answer the gold answer?

    from arbitrage_grader import verify
    verify("\\frac{1}{2}", "so the answer is $\\boxed{0.5}$").equal   # True

`verify` grades one pair, `verify_batch` many pairs across threads (the GIL released).
Both return `Verdict`s: `equal`, the `gold` as compared and the `pred` that was extracted.
`GradeOptions` declares the conventions where evaluation suites differ (numeric tolerance,
units, order of plain lists); see docs/grading.md in the repository.
"""

from ._native import (
    MAX_INPUT_BYTES,
    GradeOptions,
    Verdict,
    __version__,
    extract_answer,
    verify,
    verify_batch,
)

__all__ = [
    "MAX_INPUT_BYTES",
    "GradeOptions",
    "Verdict",
    "__version__",
    "extract_answer",
    "verify",
    "verify_batch",
]
