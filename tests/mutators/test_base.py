"""The copy-then-edit helpers: correct copies and checked edits (what a copy costs is measured
by ``python -m benchmarks.harness.perf --goals``, not asserted)."""

from __future__ import annotations

import pyglove as pg
import pytest

from mutators.base import copy_tree, remove, replace, set_list
from sammo_core.graph import content_hash
from sammo_core.serialization import to_json
from sammo_core.testing import synthetic


def test_copy_is_equal_and_independent() -> None:
    program = synthetic.start_program()
    copy = copy_tree(program)
    assert pg.eq(copy, program) and to_json(copy) == to_json(program)
    assert content_hash(copy) == content_hash(program)
    copy.rebind({"child.prompt.children[0].title": "Changed"}, skip_notification=True)
    assert program.child.prompt.children[0].title != "Changed"


def test_edits_of_a_copy_are_still_checked() -> None:
    program = synthetic.start_program()
    with pytest.raises(TypeError, match="temperature"):
        replace(program, "child.temperature", "hot")
    child = replace(program, "child.temperature", 0.5)
    assert child.child.temperature == 0.5 and program.child.temperature != 0.5


def test_list_edits_keep_the_argument() -> None:
    program = synthetic.start_program()
    sections = list(program.child.prompt.children)
    shorter = remove(program, "child.prompt.children[0]")
    swapped = set_list(program, "child.prompt.children", sections[::-1])
    assert len(shorter.child.prompt.children) == len(sections) - 1
    assert [s.title for s in swapped.child.prompt.children] == [s.title for s in sections[::-1]]
    assert [s.title for s in program.child.prompt.children] == [s.title for s in sections]
    assert all(s.sym_parent is not None for s in swapped.child.prompt.children)
