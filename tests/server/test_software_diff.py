"""The inventory diff (pure): applying its changes to the stored inventory gives the reported one."""

from __future__ import annotations

import random
from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from server.fleet.software_diff import Installed, diff, inventory_digest, inventory_from


@dataclass(frozen=True)
class Item:
    name: str
    version: str = "1"
    publisher: str = ""
    source: str = "dpkg"
    judged: bool | None = None
    basis: str = ""


items = st.builds(
    Item,
    name=st.sampled_from(["vlc", "gimp", "libflac12", "", "x\x00y", "é"]),
    version=st.sampled_from(["1", "2", "10"]),
    source=st.sampled_from(["dpkg", "flatpak:org.gimp.GIMP"]),
    judged=st.sampled_from([None, True, False]),
)


def apply(current: dict[str, Installed], new: dict[str, Installed]) -> dict[str, Installed]:
    changes, quiet = diff(current, new)
    result = dict(current)
    for change in changes:
        if change.kind == "removed":
            del result[change.item.key]
        else:
            result[change.item.key] = change.item
    for item in quiet:
        result[item.key] = item
    return result


@given(st.lists(items, max_size=12), st.lists(items, max_size=12))
def test_the_changes_bring_the_stored_inventory_to_the_reported_one(
    before: list[Item], after: list[Item]
) -> None:
    current, new = inventory_from(before), inventory_from(after)
    assert apply(current, new) == new
    changes, _ = diff(current, new)
    assert len({(c.item.key, c.kind) for c in changes}) == len(changes)  # each change once
    if current == new:
        assert changes == []


@given(st.lists(items, max_size=12), st.randoms())
def test_order_and_repeats_do_not_make_another_inventory(listed: list[Item], chance: random.Random) -> None:
    shuffled = listed + listed[: len(listed) // 2]
    chance.shuffle(shuffled)
    assert inventory_from(shuffled) == inventory_from(listed)
    assert inventory_digest(inventory_from(shuffled)) == inventory_digest(inventory_from(listed))


def test_the_digest_cannot_be_fooled_by_shifting_text_between_fields() -> None:
    one = inventory_from([Item("ab", "c")])
    other = inventory_from([Item("a", "bc")])
    assert inventory_digest(one) != inventory_digest(other)
    assert inventory_digest(inventory_from([Item("vlc", judged=True)])) != inventory_digest(
        inventory_from([Item("vlc", judged=False)])
    )
