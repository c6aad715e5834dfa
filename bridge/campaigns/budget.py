"""How many claims a worker holds at once: as many as it manages to place in time.

Claims are taken by their campaigns' pace, not by how fast this process can write a
call's bookkeeping. A worker that claims more than it can place makes every placement
wait for a database connection (and some give up after the pool's timeout), and its
claims miss their slots. So the budget grows a little after each pass whose
placements all kept their slots and is halved after a pass where one was late or
failed (additive increase, multiplicative decrease, as TCP does with its window).
Trouble with claims taken before the last cut is not counted again: they were taken
under the old budget. The other workers take what this one leaves.
"""

from __future__ import annotations

from dataclasses import dataclass

# A budget never drops below this: a worker always places something.
FLOOR = 10
# Claims added to the budget after a pass without trouble.
STEP = 10


@dataclass
class ClaimBudget:
    ceiling: int  # --max-placing: never more than this
    size: int = 0
    troubled: bool = False
    generation: int = 0  # cuts so far: a claim remembers the one it was taken in

    def __post_init__(self) -> None:
        self.size = self.size or min(self.ceiling, 5 * FLOOR)

    def room(self, placing: int) -> int:
        """How many fresh claims to take while `placing` are held."""
        return max(0, self.size - placing)

    def trouble(self, generation: int) -> None:
        """A claim taken in `generation` was late for its slot or failed."""
        if generation == self.generation:
            self.troubled = True

    def next_pass(self) -> None:
        """Adjust the budget for the next pass by what the last one saw."""
        if self.troubled:
            self.size = max(min(FLOOR, self.ceiling), self.size // 2)
            self.generation += 1
        else:
            self.size = min(self.ceiling, self.size + STEP)
        self.troubled = False
