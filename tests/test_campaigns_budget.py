"""The claim budget: grows while placements keep their slots, halves when one does
not, and counts trouble once per cut."""

from __future__ import annotations

import pytest

from bridge.campaigns.budget import FLOOR, STEP, ClaimBudget


def test_it_starts_small_and_grows_to_its_ceiling_while_all_goes_well() -> None:
    budget = ClaimBudget(ceiling=200)
    sizes = []
    for _ in range(20):
        budget.next_pass()
        sizes.append(budget.size)
    assert sizes[0] == 5 * FLOOR + STEP
    assert sizes == sorted(sizes)
    assert sizes[-1] == 200


@pytest.mark.parametrize(
    ("ceiling", "size", "after_trouble"),
    [
        (200, 200, 100),
        (200, 30, 15),
        (200, 12, FLOOR),
        (5, 5, 5),  # a ceiling under the floor is the floor
    ],
)
def test_trouble_halves_it_but_never_below_the_floor(
    ceiling: int, size: int, after_trouble: int
) -> None:
    budget = ClaimBudget(ceiling=ceiling, size=size)
    budget.trouble(budget.generation)
    budget.next_pass()
    assert budget.size == after_trouble


def test_trouble_from_claims_taken_before_the_cut_is_not_counted_again() -> None:
    budget = ClaimBudget(ceiling=200, size=200)
    old = budget.generation
    budget.trouble(old)
    budget.next_pass()
    assert budget.size == 100
    budget.trouble(old)  # a late claim taken under the budget of 200
    budget.next_pass()
    assert budget.size == 100 + STEP
    budget.trouble(budget.generation)
    budget.next_pass()
    assert budget.size == (100 + STEP) // 2


@pytest.mark.parametrize(("size", "placing", "room"), [(50, 0, 50), (50, 45, 5), (50, 80, 0)])
def test_room_is_what_the_budget_leaves(size: int, placing: int, room: int) -> None:
    assert ClaimBudget(ceiling=200, size=size).room(placing) == room
