"""Skip corrupt clips at train time, and stop the run once too many are bad.

A long run should neither die at step 40,000 on one unreadable file nor train for days on a data set whose videos
are half missing. [`BadSampleTracker`] does the middle thing: a clip that fails to decode is logged and skipped (the
caller draws another sample), and once at least `min_samples` clips have been tried, a bad fraction above
`max_bad_fraction` raises [`TooManyBadSamplesError`] naming the limit and a few of the bad files.

A run whose every clip fails is stopped sooner: when the first `n` clips have all failed and a data set within the
limit would do that with a chance under 0.1% (`max_bad_fraction ** n < 0.001`: 3 clips at the default 5%, 10 at 50%,
never at 100%), it raises at once rather than train at loss 0 until `min_samples` clips have been tried.
"""

import logging
import os

from r1video.data.video import VideoDecodeError, VideoFrames, load_video_frames

__all__ = ["BadSampleTracker", "TooManyBadSamplesError"]

logger = logging.getLogger(__name__)

ALL_BAD_CHANCE = 1e-3  # stop when "every clip so far failed" is this unlikely for a data set within the limit


class TooManyBadSamplesError(RuntimeError):
    """More clips failed to decode than the configured limit allows."""


class BadSampleTracker:
    """Count good and bad clips; skip bad ones until their fraction passes a limit.

    Args:
        max_bad_fraction: Largest tolerated fraction of bad clips among those tried (e.g. `0.05`).
        min_samples: Clips to try before the fraction is enforced, so that an early bad clip does not stop a run.
        max_logged: Bad clips logged one by one; later ones are only counted.

    Example:
        ```python
        tracker = BadSampleTracker(max_bad_fraction=0.05)
        frames = tracker.load(path, num_frames=16)  # None when the clip is bad
        ```
    """

    def __init__(self, max_bad_fraction: float = 0.05, min_samples: int = 20, max_logged: int = 20):
        if not 0 <= max_bad_fraction <= 1:
            raise ValueError(f"max_bad_fraction must be in [0, 1], got {max_bad_fraction}")
        self.max_bad_fraction = max_bad_fraction
        self.min_samples = min_samples
        self.max_logged = max_logged
        self.num_good = 0
        self.bad: dict[str, str] = {}  # path -> reason, in the order they were found
        self.num_bad = 0

    @property
    def num_seen(self) -> int:
        return self.num_good + self.num_bad

    @property
    def bad_fraction(self) -> float:
        return self.num_bad / self.num_seen if self.num_seen else 0.0

    def record_good(self) -> None:
        """Count a clip that loaded."""
        self.num_good += 1

    def record_bad(self, path: str | os.PathLike, reason: str | Exception) -> None:
        """Count and log a clip that failed; raise once the bad fraction passes the limit.

        Raises:
            TooManyBadSamplesError: at least `min_samples` clips were tried and more than `max_bad_fraction` failed,
                or every clip so far failed and that is too unlikely within the limit (see the module docstring).
        """
        self.num_bad += 1
        self.bad.setdefault(str(path), str(reason))
        if self.num_bad <= self.max_logged:
            logger.warning("skipping bad video %s (%d bad of %d so far)", reason, self.num_bad, self.num_seen)
        if self.num_good == 0 and self.max_bad_fraction**self.num_bad < ALL_BAD_CHANCE:
            raise TooManyBadSamplesError(
                f"the first {self.num_bad} videos all failed to decode, which a data set within the limit of "
                f"{self.max_bad_fraction:.1%} bad videos does with a chance under {ALL_BAD_CHANCE:.1%}: stopped "
                f"before training on no video. {self._advice()}"
            )
        if self.num_seen >= self.min_samples and self.bad_fraction > self.max_bad_fraction:
            raise TooManyBadSamplesError(
                f"{self.num_bad} of {self.num_seen} videos ({self.bad_fraction:.1%}) failed to decode, more than the "
                f"limit of {self.max_bad_fraction:.1%}. {self._advice()}"
            )

    def _advice(self) -> str:
        examples = "; ".join(f"{p}: {r}" for p, r in list(self.bad.items())[:3])
        return f"First ones: {examples}. Run `r1video data validate FILE --video-root DIR` to list every bad record."

    def load(self, path: str | os.PathLike, **kwargs) -> VideoFrames | None:
        """[`load_video_frames`] that returns `None` for a bad clip instead of raising (and counts it)."""
        try:
            frames = load_video_frames(path, **kwargs)
        except VideoDecodeError as exc:
            self.record_bad(path, exc)
            return None
        self.record_good()
        return frames

    def state_dict(self) -> dict:
        """Counts to save with a checkpoint, so a resumed run keeps its tally."""
        return {"num_good": self.num_good, "num_bad": self.num_bad, "bad": dict(self.bad)}

    def load_state_dict(self, state: dict) -> None:
        self.num_good, self.num_bad, self.bad = state["num_good"], state["num_bad"], dict(state["bad"])
