"""LLM-as-judge evaluation: prompts, metrics, providers and the engine the pipeline calls.

    engine = JudgeEngine(config, budget=default_budget(config))
    scores = engine.judge([JudgeTask(record, "groundedness"), ...])   # one Score per task, in order
"""

from monitor.judge.budget import TokenBudget, default_budget
from monitor.judge.engine import JudgeEngine, JudgeTask
from monitor.judge.limits import RetryPolicy
from monitor.judge.metrics import BUILTIN, Metric, enabled_metrics
from monitor.judge.prompts import Prompt, PromptError, load_prompt

__all__ = [
    "BUILTIN",
    "JudgeEngine",
    "JudgeTask",
    "Metric",
    "Prompt",
    "PromptError",
    "RetryPolicy",
    "TokenBudget",
    "default_budget",
    "enabled_metrics",
    "load_prompt",
]
