from typing import Optional, Sequence

MAX_INPUT_BYTES: int
__version__: str

class GradeOptions:
    """The conventions a grading call follows.

    tolerance: "exact", "rounded" (default) or "relative:REL" ("relative" alone is 1e-4).
    units: "ignore" (default) or "must-match".
    list_order: "ordered" (default) or "any" (plain comma lists as multisets).
    Unknown spellings and out-of-range tolerances raise ValueError.
    """

    def __init__(
        self,
        tolerance: str = "rounded",
        units: str = "ignore",
        list_order: str = "ordered",
    ) -> None: ...
    @property
    def tolerance(self) -> str: ...
    @property
    def units(self) -> str: ...
    @property
    def list_order(self) -> str: ...
    def __eq__(self, other: object) -> bool: ...

class Verdict:
    """Whether the prediction equals the gold, the gold as compared, and the extracted answer."""

    @property
    def equal(self) -> bool: ...
    @property
    def gold(self) -> str: ...
    @property
    def pred(self) -> Optional[str]: ...
    def __bool__(self) -> bool: ...

def verify(
    gold: str,
    pred: str,
    *,
    options: Optional[GradeOptions] = None,
    tolerance: Optional[str] = None,
    units: Optional[str] = None,
    list_order: Optional[str] = None,
) -> Verdict:
    """Grade one prediction (a bare answer or a whole solution) against a gold answer.

    Keyword conventions override the matching field of `options` (default: GradeOptions()).
    Raises TypeError for non-strings, ValueError for strings over MAX_INPUT_BYTES or unknown
    conventions, UnicodeEncodeError for strings with lone surrogates.
    """

def verify_batch(
    golds: Sequence[str],
    preds: Sequence[str],
    *,
    options: Optional[GradeOptions] = None,
    threads: Optional[int] = None,
) -> list[Verdict]:
    """Grade pairs across threads with the GIL released; verdicts in input order.

    threads: None uses one worker per core; n >= 1 uses a pool of n workers.
    Raises ValueError when the sequences differ in length, as verify does otherwise.
    """

def extract_answer(text: str) -> Optional[str]:
    """The final answer of a solution text, or None when there is none."""
