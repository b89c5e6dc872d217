"""Names renamed to say what they are keep their old spellings for one release, so that user
code and saved files written for them still work."""

from __future__ import annotations

import sammo_core.runners
import search
from sammo_core.runners.accounting import AccountingRunner, Budget, CallBudget
from sammo_core.runners.scripted import ScriptedRunner


def test_budget_is_the_old_name_of_call_budget() -> None:
    assert Budget is CallBudget and sammo_core.runners.Budget is sammo_core.runners.CallBudget
    runner = AccountingRunner(ScriptedRunner(default="ok"), Budget(calls=2))
    assert runner.budget == CallBudget(calls=2)


def test_prompt_tuning_is_the_old_name_of_prompt_tuner() -> None:
    assert search.PromptTuning is search.PromptTuner
    assert search.PromptTuner.__name__ == "PromptTuner"
