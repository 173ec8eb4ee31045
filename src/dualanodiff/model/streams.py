"""The stream layout: how a batch of sample groups is interleaved for the one UNet pass.

Every sample group is `count` consecutive rows of the batch ((b f) with f = count): stream 0 is the global branch
(the whole anomaly image I), stream 1 the anomaly branch (the anomaly part I_a), and with BCM stream 2 is the
background I_b, which only conditions the global branch. The two branches have LoRA, SAIM and a loss; the
background stream has none of them.
"""

from __future__ import annotations

from dataclasses import dataclass

GLOBAL, ANOMALY, BACKGROUND = 0, 1, 2
BRANCHES = 2  # global and anomaly: the streams with adapters and a loss


def stream_branches(num_streams: int, background_branch: int | None, num_branches: int = BRANCHES) -> list[int]:
    """The branch whose adapters each stream gets, in stream order: every branch its own, then the streams past
    them (BCM's background) `background_branch`'s; with None the list ends at the branches and the streams past it
    get none (the frozen base)."""
    extra = num_streams - num_branches
    return list(range(num_branches)) + ([background_branch] * extra if background_branch is not None else [])


@dataclass(frozen=True)
class StreamLayout:
    background: bool = False  # BCM's background stream after the two branches

    @property
    def count(self) -> int:
        return BRANCHES + int(self.background)
